// get.js: the baseline of bench/run. The official Phase Node SDK
// (@phase.dev/phase-node, installed by `npm ci` in interop/) does what an
// app using it does at start-up, init() and get() of one environment, and
// exits. It prints nothing on success and never a value: only a count when
// the count is wrong.
//
//   PHASE_SERVICE_TOKEN=... PHASE_HOST=http://127.0.0.1:PORT PHASE_APP_ID=... \
//   PHASE_ENV=Production BENCH_N=1000 node bench/node/get.js
"use strict";
const path = require("path");
const sdk = require.resolve("@phase.dev/phase-node", {
  paths: [path.join(__dirname, "..", "..", "interop")],
});
const mod = require(sdk);
const Phase = mod.default || mod;

(async () => {
  const env = process.env;
  const phase = new Phase(env.PHASE_SERVICE_TOKEN, env.PHASE_HOST);
  await phase.init();
  const secrets = await phase.get({ appId: env.PHASE_APP_ID, envName: env.PHASE_ENV });
  const want = Number(env.BENCH_N);
  if (secrets.length !== want) {
    console.error(`get.js: got ${secrets.length} secrets, want ${want}`);
    process.exit(1);
  }
  // An app would go on running; the benchmark stops the clock here.
  process.exit(0);
})().catch((e) => {
  console.error("get.js:", e && e.message ? e.message : String(e));
  process.exit(1);
});
