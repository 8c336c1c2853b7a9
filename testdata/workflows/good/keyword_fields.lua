-- Optional fields of hwe: timeouts, retries, env, description. Values are
-- validated; this workflow uses them all and must succeed.
workflow = {
  name = "fields",
  fail_fast = true,
  steps = {
    a = {
      description = "first",
      timeout = "5s",
      retries = { max = 2, backoff = "10ms", factor = 2 },
      env = { MODE = "test" },
      code = [[function run() return { ok = true } end]],
    },
    b = { depends_on = { "a" }, timeout = 3, retries = 1, code = [[function run(i) return i.a.ok end]] },
  },
}
