// read.js: the official Phase Node SDK reads one environment and prints a
// JSON object KEY -> value on stdout (stderr gets errors only).
//
//   PHASE_TOKEN=... PHASE_HOST=http://127.0.0.1:PORT PHASE_APP_ID=... \
//   PHASE_ENV_NAME=Production [PHASE_PATH=/] node read.js
//
// Values are written to stdout only: the caller compares them and reports
// names and lengths, never values.
"use strict";
// The SDK rejects from inside promise executors, so many failures arrive
// as unhandled rejections, which node would print in full: an axios error
// carries its request, Authorization header (the token) included. Print
// the message only, as the catch below does.
for (const ev of ["unhandledRejection", "uncaughtException"]) {
  process.on(ev, (e) => {
    console.error("read.js:", e && e.message ? e.message : String(e));
    process.exit(1);
  });
}
const mod = require("@phase.dev/phase-node");
const Phase = mod.default || mod;

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`read.js: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

(async () => {
  const phase = new Phase(need("PHASE_TOKEN"), need("PHASE_HOST"));
  await phase.init();
  const options = { appId: need("PHASE_APP_ID"), envName: need("PHASE_ENV_NAME") };
  if (process.env.PHASE_PATH) options.path = process.env.PHASE_PATH;
  const secrets = await phase.get(options);
  const out = {};
  for (const s of secrets) out[s.key] = s.value;
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  // The SDK throws strings and Errors alike; print the message only.
  console.error("read.js:", e && e.message ? e.message : String(e));
  process.exit(1);
});
