// actions/cache stand-in: main restores, post saves. Only node's standard library.
const fs = require("fs");
const path = require("path");

const isPost = Boolean(process.env.STATE_key);
const root = process.env.STANDIN_CACHE_DIR || path.join(process.env.RUNNER_TEMP || "/tmp", "standin-cache");
const safe = (key) => key.replace(/[^A-Za-z0-9._-]/g, "_");
const target = path.resolve(process.env.GITHUB_WORKSPACE || ".", process.env.INPUT_PATH || "");

function append(file, line) {
  if (file) fs.appendFileSync(file, line + "\n");
}

if (!isPost) {
  const key = process.env.INPUT_KEY;
  const prefixes = (process.env["INPUT_RESTORE-KEYS"] || "").split("\n").map((s) => s.trim()).filter(Boolean);
  fs.mkdirSync(root, { recursive: true });
  let found = fs.existsSync(path.join(root, safe(key))) ? safe(key) : null;
  const hit = found !== null;
  if (!found) {
    const entries = fs.readdirSync(root).map((name) => ({ name, time: fs.statSync(path.join(root, name)).mtimeMs }));
    entries.sort((a, b) => b.time - a.time);
    for (const prefix of prefixes) {
      const match = entries.find((e) => e.name.startsWith(safe(prefix)));
      if (match) { found = match.name; break; }
    }
  }
  if (found) {
    fs.mkdirSync(target, { recursive: true });
    fs.cpSync(path.join(root, found), target, { recursive: true });
    console.log(`cache stand-in: restored ${found}${hit ? "" : " (restore-key)"}`);
  } else {
    console.log(`cache stand-in: no entry for ${key}`);
  }
  append(process.env.GITHUB_OUTPUT, `cache-hit=${hit}`);
  append(process.env.GITHUB_STATE, `key=${key}`);
  append(process.env.GITHUB_STATE, `hit=${hit}`);
} else if (process.env.STATE_hit === "true") {
  console.log("cache stand-in: exact key was restored, nothing to save");
} else if (fs.existsSync(target)) {
  const dest = path.join(root, safe(process.env.STATE_key));
  fs.rmSync(dest, { recursive: true, force: true });
  fs.cpSync(target, dest, { recursive: true });
  console.log(`cache stand-in: saved ${process.env.STATE_key}`);
}
