workflow = {
  steps = {
    a = { code = "function run() return 1 end" },
    b = {
      depends_on = { "a", "nowhere" },
      code = "function run() return 1 end",
    },
  },
}
