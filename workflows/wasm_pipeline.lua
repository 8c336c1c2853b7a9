-- A WebAssembly pipeline in the reference engine's calling convention.
--
-- The wasm steps call functions of example_wasm_module.wasm (built from
-- example_wasm_module.wat beside it). A module that imports nothing from
-- Extism is called the reference way: the function gets no data, returns a
-- status code (0 success, 1..10 a warning, anything else fails the step),
-- and the step's output is a report object:
--   {"input_summary": {dep: "object[4]", ...},   -- only when there are inputs
--    "processed_data": {"success": true, "message": ..., "timestamp": ...},
--    "wasm_execution": {"function", "module", "return_code", "status", "input_count"}}
-- A module path is looked up beside the workflow first, then in the working
-- directory (so the reference's "workflows/example_wasm_module.wasm" works
-- from the repository root too). See wasm_native_pipeline.lua for wasm
-- steps that compute from their inputs.
workflow = {
  name = "wasm_pipeline",
  description = "Python prepares parameters, three WebAssembly functions check their computations, JavaScript and Python report",

  steps = {
    generate_input = {
      language = "python",
      code = [[
def run():
    numbers = list(range(1, 11))
    print(f"prepared {len(numbers)} numbers for the wasm steps")
    return {
        "numbers": numbers,
        "fibonacci_input": 10,
        "computation_params": {"base_value": 1, "iterations": 100},
        "timestamp": "2024-10-26T12:00:00Z",
    }
]],
    },

    -- run(): checks that fib(10) = 55.
    wasm_basic_computation = {
      language = "wasm",
      module = "example_wasm_module.wasm",
      func = "run",
      depends_on = { "generate_input" },
    },

    -- process_data(): fills and sums 100 words of its memory.
    wasm_process_data = {
      language = "wasm",
      module = "example_wasm_module.wasm",
      func = "process_data",
      depends_on = { "wasm_basic_computation" },
    },

    -- complex_computation(): sum of squares 1..100 = 338350, else code 2.
    wasm_complex_computation = {
      language = "webassembly",
      module = "example_wasm_module.wasm",
      ["function"] = "complex_computation",
      depends_on = { "wasm_process_data" },
      timeout = "10s",
    },

    analyze_wasm_results = {
      language = "javascript",
      depends_on = { "generate_input", "wasm_basic_computation", "wasm_process_data", "wasm_complex_computation" },
      code = [[
function run(inputs) {
  const stages = {
    basic_computation: inputs.wasm_basic_computation,
    data_processing: inputs.wasm_process_data,
    complex_computation: inputs.wasm_complex_computation,
  };
  const results = {};
  let succeeded = 0;
  for (const [stage, output] of Object.entries(stages)) {
    const exec = output.wasm_execution;
    const ok = exec.return_code === 0 && exec.status === "success";
    if (ok) succeeded++;
    results[stage] = { function: exec.function, return_code: exec.return_code, status: exec.status, success: ok };
  }
  const total = Object.keys(stages).length;
  const source = inputs.generate_input;
  console.log(`${succeeded} of ${total} wasm steps succeeded`);
  return {
    analysis: {
      input_summary: {
        numbers_count: source.numbers.length,
        fibonacci_input: source.fibonacci_input,
        timestamp: source.timestamp,
      },
      wasm_execution_results: results,
      overall_analysis: { total_wasm_steps: total, successful_steps: succeeded, failed_steps: total - succeeded },
    },
    summary: {
      success_rate: (100 * succeeded / total).toFixed(1) + "%",
      wasm_integration_status: succeeded === total ? "SUCCESS" : "PARTIAL",
      languages_used: ["python", "wasm", "javascript"],
    },
  };
}
]],
    },

    create_final_report = {
      language = "python",
      depends_on = { "analyze_wasm_results" },
      code = [[
def run(inputs):
    analysis = inputs["analyze_wasm_results"]
    overall = analysis["analysis"]["overall_analysis"]
    print("WebAssembly pipeline report")
    for stage, result in sorted(analysis["analysis"]["wasm_execution_results"].items()):
        mark = "ok" if result["success"] else "FAILED"
        print(f"  {stage:<20} {result['function']:<20} rc={result['return_code']} {mark}")
    print(f"  success rate: {analysis['summary']['success_rate']}")
    return {
        "workflow": "wasm_pipeline",
        "status": analysis["summary"]["wasm_integration_status"],
        "wasm_steps": overall["total_wasm_steps"],
        "successful_steps": overall["successful_steps"],
        "success_rate": analysis["summary"]["success_rate"],
        "checks": {
            "fibonacci_10_is_55": analysis["analysis"]["wasm_execution_results"]["basic_computation"]["success"],
            "sum_of_squares_1_to_100_is_338350": analysis["analysis"]["wasm_execution_results"]["complex_computation"]["success"],
        },
    }
]],
    },
  },
}
