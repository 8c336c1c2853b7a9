workflow = {
  steps = {
    a = { depends_on = { "a" }, code = "function run() end" },
  },
}
