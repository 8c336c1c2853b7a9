-- Attack: recurse without end. Python's own recursion limit is lifted
-- first (a step can do that), so what stops it is the interpreter's stack
-- or the memory limit; the step must fail saying which.
workflow = {
  name = "attack_deep_recursion",
  steps = {
    python = {
      language = "python",
      timeout = "60s",
      code = [[
import sys

def deeper(n):
    return deeper(n + 1) + 1

def run():
    sys.setrecursionlimit(1_000_000_000)
    return {"escaped": deeper(0)}
]],
    },
    javascript = {
      language = "javascript",
      timeout = "60s",
      code = [[
function deeper(n) {
  return deeper(n + 1) + 1;
}

function run() {
  return { escaped: deeper(0) };
}
]],
    },
    shell = {
      language = "shell",
      timeout = "60s",
      code = [[
deeper() { deeper; }
deeper
]],
    },
    lua = {
      timeout = "60s",
      code = [[
local function deeper(n)
  return deeper(n + 1) + 1
end

function run()
  return { escaped = deeper(0) }
end
]],
    },
    -- A recursive vararg call: each level passes one more argument.
    lua_vararg = {
      timeout = "30s",
      code = [[
local function deeper(...)
  return deeper(1, ...)
end

function run()
  return { escaped = deeper() }
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "recurse", timeout = "60s" },
  },
}
