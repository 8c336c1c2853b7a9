workflow = {
  steps = {
    a = {
      code = [[
function run()
  return 1 +
end
]],
    },
  },
}
