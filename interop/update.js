// update.js: the official Phase Node SDK updates and deletes secrets, by
// key, from a JSON file {"update": {"KEY": "new value"}, "delete": ["KEY"]}.
//
//   PHASE_TOKEN=... PHASE_HOST=... PHASE_APP_ID=... PHASE_ENV_NAME=... node update.js changes.json
//
// The SDK's update and delete never settle when the request fails (they
// only log): run this under a timeout.
"use strict";
// The SDK rejects from inside promise executors, so many failures arrive
// as unhandled rejections, which node would print in full: an axios error
// carries its request, Authorization header (the token) included. Print
// the message only, as the catch below does.
for (const ev of ["unhandledRejection", "uncaughtException"]) {
  process.on(ev, (e) => {
    console.error("update.js:", e && e.message ? e.message : String(e));
    process.exit(1);
  });
}
const fs = require("fs");
const mod = require("@phase.dev/phase-node");
const Phase = mod.default || mod;

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`update.js: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

(async () => {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: node update.js changes.json");
    process.exit(2);
  }
  const changes = JSON.parse(fs.readFileSync(file, "utf8"));
  const appId = need("PHASE_APP_ID");
  const envName = need("PHASE_ENV_NAME");
  const phase = new Phase(need("PHASE_TOKEN"), need("PHASE_HOST"));
  await phase.init();
  const ids = {};
  for (const s of await phase.get({ appId, envName })) ids[s.key] = s.id;
  const idOf = (key) => {
    if (!ids[key]) throw new Error(`no secret named ${key}`);
    return ids[key];
  };
  const updates = Object.entries(changes.update || {}).map(([key, value]) => ({ id: idOf(key), value }));
  if (updates.length) await phase.update({ appId, envName, secrets: updates });
  const deletes = (changes.delete || []).map(idOf);
  if (deletes.length) await phase.delete({ appId, envName, secretIds: deletes });
  process.stdout.write(JSON.stringify({ updated: updates.length, deleted: deletes.length }));
})().catch((e) => {
  console.error("update.js:", e && e.message ? e.message : String(e));
  process.exit(1);
});
