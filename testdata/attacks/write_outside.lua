-- Attack: write outside the step's working folder, directly, through ".."
-- and through symbolic links the step makes. Every step is granted one
-- folder, @GRANTED@ (allow.fs.write), and must be able to write there and
-- in its working folder (the controls); every path below is outside both.
-- The test then searches the host for files named hwe-attack-@ID@-*.
local id = "hwe-attack-@ID@"
local targets = table.concat({
  "/etc/" .. id .. "-direct",                                -- a system folder
  "/var/tmp/" .. id .. "-direct",                            -- a host folder the sandbox does not show
  "@REPO@/" .. id .. "-direct",                              -- hwe's own folder
  "../" .. id .. "-dotdot",                                  -- beside the working folder
  "../../../../../../../../../var/tmp/" .. id .. "-dotdot",  -- up to the root and down again
  "@GRANTED@/../" .. id .. "-dotdot",                        -- out of the granted folder
}, "|")
-- Symbolic links are made in a folder inside the granted one
-- (@GRANTED@/links-RUNNER), pointing out of the granted folder.
local links = table.concat({
  "/var/tmp/" .. id .. "-symlink",
  "../../" .. id .. "-symlink",                               -- relative, out of the granted folder
  "@REPO@/" .. id .. "-symlink",
  "/etc/" .. id .. "-symlink",
}, "|")
local function env(runner)
  return { TARGETS = targets, LINK_TARGETS = links, LINK_DIR = "@GRANTED@/links-" .. runner,
           CONTROL = "@GRANTED@/control-" .. runner .. "-@ID@" }
end
local grant = { fs = { write = { "@GRANTED@" } } }

workflow = {
  name = "attack_write_outside",
  steps = {
    python = {
      language = "python",
      allow = grant,
      env = env("python"),
      code = [[
import os

def run():
    with open("control-in-workdir", "w") as f:
        f.write("control")
    with open(os.environ["CONTROL"], "w") as f:
        f.write("control")
    got, errors = [], []

    def attempt(path):
        try:
            with open(path, "w") as f:
                f.write("escaped")
            got.append(path)
        except OSError as e:
            errors.append(str(e))

    for path in os.environ["TARGETS"].split("|"):
        attempt(path)
    os.makedirs(os.environ["LINK_DIR"])
    for i, target in enumerate(os.environ["LINK_TARGETS"].split("|")):
        link = os.path.join(os.environ["LINK_DIR"], "link%d" % i)
        os.symlink(target, link)
        attempt(link)
    if got:
        return {"escaped": got}
    raise PermissionError("all %d writes refused: %s" % (len(errors), "; ".join(errors)))
]],
    },
    javascript = {
      language = "javascript",
      allow = grant,
      env = env("javascript"),
      code = [[
const fs = require('fs');
const path = require('path');

function run() {
  fs.writeFileSync('control-in-workdir', 'control');
  fs.writeFileSync(process.env.CONTROL, 'control');
  const got = [], errors = [];
  const attempt = (p) => {
    try { fs.writeFileSync(p, 'escaped'); got.push(p); } catch (e) { errors.push(e.message); }
  };
  for (const p of process.env.TARGETS.split('|')) attempt(p);
  fs.mkdirSync(process.env.LINK_DIR);
  process.env.LINK_TARGETS.split('|').forEach((target, i) => {
    const link = path.join(process.env.LINK_DIR, 'link' + i);
    fs.symlinkSync(target, link);
    attempt(link);
  });
  if (got.length) return { escaped: got };
  throw new Error(`all ${errors.length} writes refused: ${errors.join('; ')}`);
}
]],
    },
    shell = {
      language = "shell",
      allow = grant,
      env = env("shell"),
      code = [[
echo control > control-in-workdir
echo control > "$CONTROL"
got= errors= n=0
attempt() {
  n=$((n + 1))
  if out=$( { echo escaped > "$1"; } 2>&1 ); then got="$got $1"; else errors="$errors; $out"; fi
}
IFS='|' read -ra paths <<< "$TARGETS"
for p in "${paths[@]}"; do attempt "$p"; done
mkdir "$LINK_DIR"
IFS='|' read -ra links <<< "$LINK_TARGETS"
for i in "${!links[@]}"; do
  ln -s "${links[$i]}" "$LINK_DIR/link$i"
  attempt "$LINK_DIR/link$i"
done
if [ -n "$got" ]; then printf '{"escaped": "%s"}\n' "$got"; exit 0; fi
echo "all $n writes refused$errors" >&2
exit 1
]],
    },
    wasm = {
      language = "wasm", module = "@WASM@", func = "write_files", allow = grant,
      -- A guest has no working folder: the relative paths resolve against
      -- nothing it was given.
      env = env("wasm"),
    },
  },
}
