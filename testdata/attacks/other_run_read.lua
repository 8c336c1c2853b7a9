-- Attack: read another run's files. While the run of other_run_leave.lua
-- is alive, its steps' files are at the host paths in @TARGETS@ (its /tmp
-- and its working folders); this run's steps try to read them, and the
-- same names in their own /tmp.
local targets = "@TARGETS@"
workflow = {
  name = "attack_other_run",
  steps = {
    python = {
      language = "python",
      env = { TARGETS = targets },
      code = [[
import os

def run():
    got, errors = [], []
    for path in os.environ["TARGETS"].split("|"):
        try:
            with open(path) as f:
                got.append(path + ": " + f.read())
        except OSError as e:
            errors.append(str(e))
    if got:
        return {"escaped": got}
    raise PermissionError("all %d reads refused: %s" % (len(errors), "; ".join(errors)))
]],
    },
    javascript = {
      language = "javascript",
      env = { TARGETS = targets },
      code = [[
const fs = require('fs');

function run() {
  const got = [], errors = [];
  for (const path of process.env.TARGETS.split('|')) {
    try { got.push(path + ': ' + fs.readFileSync(path, 'utf8')); } catch (e) { errors.push(e.message); }
  }
  if (got.length) return { escaped: got };
  throw new Error(`all ${errors.length} reads refused: ${errors.join('; ')}`);
}
]],
    },
    shell = {
      language = "shell",
      env = { TARGETS = targets },
      code = [[
got= errors=
IFS='|' read -ra paths <<< "$TARGETS"
for p in "${paths[@]}"; do
  if out=$(cat -- "$p" 2>&1); then got="$got $p"; else errors="$errors; $out"; fi
done
if [ -n "$got" ]; then printf '{"escaped": "%s"}\n' "$got"; exit 0; fi
echo "all ${#paths[@]} reads refused$errors" >&2
exit 1
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "read_files", env = { TARGETS = targets } },
  },
}
