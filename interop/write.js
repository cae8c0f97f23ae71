// write.js: the official Phase Node SDK creates secrets from a JSON file,
// an array of {"key", "value", "comment"?, "path"?, "tags"?}.
//
//   PHASE_TOKEN=... PHASE_HOST=... PHASE_APP_ID=... PHASE_ENV_NAME=... node write.js secrets.json
//
// Note: the SDK upper-cases every key before encrypting it (and digests
// the key as given).
"use strict";
// The SDK rejects from inside promise executors, so many failures arrive
// as unhandled rejections, which node would print in full: an axios error
// carries its request, Authorization header (the token) included. Print
// the message only, as the catch below does.
for (const ev of ["unhandledRejection", "uncaughtException"]) {
  process.on(ev, (e) => {
    console.error("write.js:", e && e.message ? e.message : String(e));
    process.exit(1);
  });
}
const fs = require("fs");
const mod = require("@phase.dev/phase-node");
const Phase = mod.default || mod;

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`write.js: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

(async () => {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: node write.js secrets.json");
    process.exit(2);
  }
  const input = JSON.parse(fs.readFileSync(file, "utf8"));
  const secrets = input.map((s) => ({
    key: s.key,
    value: s.value,
    comment: s.comment || "",
    path: s.path || "/",
    tags: s.tags || [],
  }));
  const phase = new Phase(need("PHASE_TOKEN"), need("PHASE_HOST"));
  await phase.init();
  await phase.create({ appId: need("PHASE_APP_ID"), envName: need("PHASE_ENV_NAME"), secrets });
  process.stdout.write(JSON.stringify({ created: secrets.length }));
})().catch((e) => {
  console.error("write.js:", e && e.message ? e.message : String(e));
  process.exit(1);
});
