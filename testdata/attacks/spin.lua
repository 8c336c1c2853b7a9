-- Attack: spin past the step's timeout (1 s), and past a CPU grant (1 s of
-- CPU, with a longer timeout) for the interpreters the OS limits.
workflow = {
  name = "attack_spin",
  steps = {
    python = {
      language = "python",
      timeout = "1s",
      code = [[
def run():
    while True:
        pass
]],
    },
    python_cpu = {
      language = "python",
      timeout = "20s",
      allow = { cpu = "1s" },
      code = [[
def run():
    while True:
        pass
]],
    },
    javascript = {
      language = "javascript",
      timeout = "1s",
      code = [[
function run() {
  for (;;) {}
}
]],
    },
    shell = {
      language = "shell",
      timeout = "1s",
      code = [[
while :; do :; done
]],
    },
    shell_cpu = {
      language = "shell",
      timeout = "20s",
      allow = { cpu = "1s" },
      code = [[
while :; do :; done
]],
    },
    lua = {
      timeout = "1s",
      code = [[
function run()
  while true do end
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "spin", timeout = "1s" },
  },
}
