-- Reconstruction of the reference engine's workflows/javascript_workflow.lua
-- (seed-behaviour.md 9 item 5): three Node steps. format_results logs a
-- report with console.log before returning, so its stdout is not one JSON
-- document and the runner takes the last line that parses (the result).
workflow = {
    name = "javascript_data_pipeline",
    description = "Generate, analyse and format data with JavaScript",

    steps = {
        generate_data = {
            language = "javascript",
            code = [[
function run() {
    const dataset = [];
    for (let i = 1; i <= 10; i++) {
        dataset.push({
            id: i,
            value: Math.random() * 100,
            timestamp: new Date().toISOString()
        });
    }
    return {
        dataset: dataset,
        count: dataset.length,
        generated_at: new Date().toISOString()
    };
}
]]
        },

        process_with_js = {
            language = "js",
            depends_on = {"generate_data"},
            code = [[
function run() {
    // `inputs` is a global defined by the runner before this code.
    const dataset = inputs.generate_data.dataset;
    const values = dataset.map(item => item.value);
    const sum = values.reduce((a, b) => a + b, 0);
    const average = sum / values.length;
    const max = Math.max(...values);
    const min = Math.min(...values);

    const processed_items = dataset
        .filter(item => item.value > average)
        .map(item => ({ ...item, normalized: item.value / max, above_average: true }));

    return {
        statistics: { count: values.length, sum: sum, average: average, max: max, min: min },
        processed_items: processed_items,
        above_average_count: processed_items.length
    };
}
]]
        },

        format_results = {
            language = "javascript",
            depends_on = {"process_with_js"},
            code = [[
function run(inputs) {
    const data = inputs.process_with_js;
    const stats = data.statistics;
    const round2 = x => Math.round(x * 100) / 100;

    const top_items = [...data.processed_items]
        .sort((a, b) => b.value - a.value)
        .slice(0, 3)
        .map(item => ({
            id: item.id,
            value: round2(item.value),
            normalized: Math.round(item.normalized * 1000) / 1000
        }));

    const report = {
        title: "JavaScript Data Processing Report",
        summary: {
            total_records: stats.count,
            records_above_average: data.above_average_count,
            percentage_above_average: ((data.above_average_count / stats.count) * 100).toFixed(2) + "%"
        },
        statistics: {
            average: round2(stats.average),
            max: round2(stats.max),
            min: round2(stats.min)
        },
        top_items: top_items
    };

    console.log("=== " + report.title + " ===");
    console.log(JSON.stringify(report, null, 2));

    return {
        report: report,
        processed_at: new Date().toISOString(),
        status: "completed"
    };
}
]]
        }
    }
}
