workflow = {
  steps = {
    a = { code = "function run() end" }
    b = { code = "function run() end" },
  },
}
