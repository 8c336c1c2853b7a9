-- Reconstruction of the reference engine's workflows/js_python_shell_workflow.lua
-- (seed-behaviour.md 9 item 6): Python generates, JavaScript analyses,
-- Python derives insights, and a shell step (with a #!/bin/bash line and
-- `function run()`) prints a banner and multi-line JSON, so its output is
-- the {exit_code,stderr,stdout} wrapper.
workflow = {
    name = "javascript_integration_pipeline",
    description = "Python, JavaScript and shell working on the same numbers",

    steps = {
        generate_data = {
            language = "python",
            code = [[
def run():
    import random
    numbers = [random.randint(1, 100) for _ in range(20)]
    print(f"Generated {len(numbers)} numbers")
    return {
        "numbers": numbers,
        "source": "python_generator",
        "timestamp": "2024-10-26T10:00:00Z"
    }
]]
        },

        analyze_data = {
            language = "javascript",
            depends_on = {"generate_data"},
            code = [[
function run(inputs) {
    const source = inputs.generate_data;
    const numbers = source.numbers;
    const sorted = [...numbers].sort((a, b) => a - b);
    const sum = numbers.reduce((a, b) => a + b, 0);
    const average = sum / numbers.length;
    const median = sorted[Math.floor(sorted.length / 2)];
    const above = numbers.filter(n => n > average).length;
    const below = numbers.filter(n => n < average).length;

    console.log(`Analyzing ${numbers.length} numbers from ${source.source}`);

    return {
        original_data: { source: source.source, timestamp: source.timestamp, count: numbers.length },
        statistics: {
            count: numbers.length,
            sum: sum,
            average: average,
            max: Math.max(...numbers),
            min: Math.min(...numbers),
            median: median
        },
        distributions: {
            above_average_count: above,
            below_average_count: below,
            above_average_percentage: ((above / numbers.length) * 100).toFixed(2) + "%"
        },
        quartile_analysis: {
            q1: sorted[Math.floor(sorted.length / 4)],
            q2: median,
            q3: sorted[Math.floor(sorted.length * 3 / 4)]
        },
        processed_at: new Date().toISOString()
    };
}
]]
        },

        ml_insights = {
            language = "python",
            depends_on = {"analyze_data"},
            code = [[
def run(inputs):
    import time
    analysis = inputs["analyze_data"]
    stats = analysis["statistics"]
    avg = stats["average"]
    median = stats["median"]
    data_range = stats["max"] - stats["min"]

    recommendations = []
    if avg > 75:
        recommendations.append("Data shows high values - consider upper bound validation")
    elif avg < 25:
        recommendations.append("Data shows low values - investigate data source")
    else:
        recommendations.append("Data distribution appears normal")
    if data_range > 80:
        recommendations.append("High variance detected - consider outlier analysis")

    return {
        "ml_insights": {
            "data_quality": {
                "score": min(100, max(0, 100 - abs(avg - 50) * 2)),
                "variance": data_range,
                "distribution": "normal" if abs(avg - median) < 5 else "skewed"
            },
            "recommendations": recommendations,
            "confidence": 0.85
        },
        "javascript_analysis": {
            "processed_count": stats["count"],
            "above_average_pct": analysis["distributions"]["above_average_percentage"],
            "quartile_range": analysis["quartile_analysis"]["q3"] - analysis["quartile_analysis"]["q1"]
        },
        "processing_chain": ["python_generator", "javascript_analyzer", "python_ml_insights"],
        "completed_at": "2024-10-26T" + str(time.time())
    }
]]
        },

        generate_report = {
            language = "shell",
            depends_on = {"ml_insights"},
            code = [[
#!/bin/bash

function run() {
    report_id="INTEGRATION-$(date +%s)"
    echo "=== Integration Pipeline Report ==="
    echo "Report: $report_id"
    echo "==================================="

    # a scratch file, written and removed again
    work="/tmp/integration_report_$$"
    mkdir -p "$work"
    echo "quality score: $(echo "$INPUT_ML_INSIGHTS" | grep -o '"score":[0-9.]*' | cut -d: -f2)" > "$work/notes.txt"
    notes=$(cat "$work/notes.txt")
    rm -rf "$work"

    # multi-line JSON in one single-quoted echo, with the dynamic parts
    # spliced in between the quotes
    echo '{
        "report": {
            "id": "'$report_id'",
            "notes": "'$notes'",
            "records": '$(parse_input ml_insights | grep -o '"processed_count":[0-9]*' | cut -d: -f2)',
            "status": "completed"
        },
        "system": {
            "hostname": "'$(hostname)'",
            "user": "'$(whoami)'",
            "shell": "'$SHELL'"
        }
    }'
}
]]
        }
    }
}
