-- Attack: fetch a URL the step is granted, which redirects to one it is
-- not: another port of the same address (a server the test runs and whose
-- requests it counts) and the cloud metadata address. Every hop of a
-- redirect must be checked against the grant. The control steps fetch the
-- granted server itself and must get through.
local allowed = "http://127.0.0.1:@ALLOWED_PORT@"
local urls = allowed .. "/redirect|" .. allowed .. "/redirect-metadata"
local grant = { net = { "127.0.0.1:@ALLOWED_PORT@" } }

local py = [[
import hwe, os

def run():
    got, errors = [], []
    for url in os.environ["URLS"].split("|"):
        try:
            r = hwe.http_fetch(url)
            got.append("%s: %s %s" % (url, r["status"], r["body"]))
        except hwe.DeniedError as e:
            errors.append(str(e))
    if os.environ.get("CONTROL") and got:
        return {"status": "ok"}
    if got:
        return {"escaped": got}
    raise PermissionError("all %d fetches refused: %s" % (len(errors), "; ".join(errors)))
]]
local js = [[
const hwe = require('hwe');

async function run() {
  const got = [], errors = [];
  for (const url of process.env.URLS.split('|')) {
    try {
      const r = await hwe.http_fetch(url);
      got.push(`${url}: ${r.status} ${r.body}`);
    } catch (e) {
      errors.push(e.message);
    }
  }
  if (process.env.CONTROL && got.length) return { status: 'ok' };
  if (got.length) return { escaped: got };
  throw new Error(`all ${errors.length} fetches refused: ${errors.join('; ')}`);
}
]]
local sh = [[
got= errors= n=0
IFS='|' read -ra urls <<< "$URLS"
for u in "${urls[@]}"; do
  n=$((n + 1))
  if out=$(hwe-host http-fetch "$u" 2>&1); then got="$got $u"; else errors="$errors; $out"; fi
done
if [ -n "$CONTROL" ] && [ -n "$got" ]; then echo '{"status": "ok"}'; exit 0; fi
if [ -n "$got" ]; then printf '{"escaped": "%s"}\n' "$got"; exit 0; fi
echo "all $n fetches refused$errors" >&2
exit 1
]]
local lua = [[
function run()
  local got, errors = {}, {}
  for url in string.gmatch(URLS, "[^|]+") do
    local ok, r = pcall(hwe.http_fetch, url)
    if ok then got[#got + 1] = url .. ": " .. r.status else errors[#errors + 1] = tostring(r) end
  end
  if CONTROL and #got > 0 then return { status = "ok" } end
  if #got > 0 then return { escaped = got } end
  error(string.format("all %d fetches refused: %s", #errors, table.concat(errors, "; ")), 0)
end
]]

local steps = {}
local code = { python = py, javascript = js, shell = sh, lua = lua }
for lang, c in pairs(code) do
  -- Lua steps have no environment variables: the URLs are globals.
  local lua_prefix = lang == "lua" and ('URLS = "' .. urls .. '"\n') or ""
  steps[lang] = { language = lang, allow = grant, env = { URLS = urls }, code = lua_prefix .. c }
  local control_prefix = lang == "lua" and ('URLS = "' .. allowed .. '/ok"\nCONTROL = true\n') or ""
  steps["control_" .. lang] = { language = lang, allow = grant, env = { URLS = allowed .. "/ok", CONTROL = "1" },
                                code = control_prefix .. c }
end
steps.wasm = { language = "wasm", module = "@WASM@", func = "fetch", allow = grant, env = { URLS = urls } }
steps.control_wasm = { language = "wasm", module = "@WASM@", func = "fetch", allow = grant,
                       env = { URLS = allowed .. "/ok", CONTROL = "1" } }

workflow = { name = "attack_redirect", steps = steps }
