-- Reconstruction of the reference engine's workflows/multi_language_workflow.lua
-- (seed-behaviour.md 9 item 7). Quirks it depends on (9.1):
--  * apply_business_rules (Lua) may return an empty recommendations table,
--    which comes out as {} (an object), and create_final_summary len()s it;
--  * generate_reports prints multi-line JSON, so its output is the shell
--    wrapper, and create_final_summary reads inputs["generate_reports"]["stdout"]
--    and pulls the JSON out of it with a regex.
workflow = {
    name = "multi_language_pipeline",
    description = "Python, JavaScript, Lua and shell in one data pipeline",

    steps = {
        fetch_api_data = {
            language = "python",
            code = [[
def run():
    import random
    print("Fetching user data from mock API...")
    users = []
    for i in range(1, 21):
        users.append({"id": i, "name": f"User{i}", "score": random.randint(50, 100)})
    return {
        "users": users,
        "metadata": {
            "source": "mock_api",
            "timestamp": "2024-10-26T10:00:00Z",
            "total_users": len(users)
        }
    }
]]
        },

        analyze_with_js = {
            language = "javascript",
            depends_on = {"fetch_api_data"},
            code = [[
function run(inputs) {
    const data = inputs.fetch_api_data;
    const users = data.users;
    const scores = users.map(u => u.score);
    const sorted = [...scores].sort((a, b) => a - b);
    const average = scores.reduce((a, b) => a + b, 0) / scores.length;

    const top_performers = [...users]
        .sort((a, b) => b.score - a.score)
        .slice(0, 5)
        .map((u, index) => ({
            id: u.id,
            name: u.name,
            score: u.score,
            percentile: ((users.length - index) / users.length * 100).toFixed(1)
        }));

    const score_distribution = {
        excellent: scores.filter(s => s >= 90).length,
        good: scores.filter(s => s >= 80 && s < 90).length,
        average: scores.filter(s => s >= 70 && s < 80).length,
        below_average: scores.filter(s => s < 70).length
    };

    console.log(`Analyzed ${users.length} users, average score ${average.toFixed(2)}`);

    return {
        original_metadata: data.metadata,
        analytics: {
            total_users: users.length,
            score_stats: {
                average: average,
                median: sorted[Math.floor(sorted.length / 2)],
                max: sorted[sorted.length - 1],
                min: sorted[0]
            },
            top_performers: top_performers,
            score_distribution: score_distribution
        },
        processed_at: new Date().toISOString()
    };
}
]]
        },

        apply_business_rules = {
            language = "lua",
            depends_on = {"analyze_with_js"},
            code = [[
function run(inputs)
    local analytics = inputs.analyze_with_js.analytics
    local rewards = {}
    local total_bonus = 0

    for rank, performer in ipairs(analytics.top_performers) do
        local bonus = 0
        if performer.score >= 95 then
            bonus = 1000
        elseif performer.score >= 90 then
            bonus = 500
        elseif performer.score >= 85 then
            bonus = 250
        end
        total_bonus = total_bonus + bonus
        table.insert(rewards, {
            user_id = performer.id,
            name = performer.name,
            score = performer.score,
            bonus = bonus,
            rank = rank
        })
    end

    local dist = analytics.score_distribution
    local avg = analytics.score_stats.average
    local recommendations = {}
    if avg < 75 then
        table.insert(recommendations, "Consider additional training programs")
    end
    if dist.below_average > analytics.total_users * 0.3 then
        table.insert(recommendations, "Implement mentorship program")
    end
    if dist.excellent < 3 then
        table.insert(recommendations, "Create stretch goals for high performers")
    end

    print("Allocated " .. total_bonus .. " in bonuses to " .. #rewards .. " users")

    return {
        reward_program = {
            rewards = rewards,
            total_bonus_allocated = total_bonus,
            eligible_users = #rewards
        },
        recommendations = recommendations,
        business_metrics = {
            performance_score = avg,
            excellence_rate = dist.excellent / analytics.total_users * 100
        }
    }
end
]]
        },

        generate_reports = {
            language = "shell",
            depends_on = {"apply_business_rules"},
            code = [[
#!/bin/bash

run() {
    local rules=$(parse_input "apply_business_rules")
    local total_bonus=$(echo "$rules" | grep -o '"total_bonus_allocated":[0-9.]*' | cut -d: -f2)
    local generated=$(date '+%Y-%m-%d %H:%M:%S')
    local report_id="RPT-$(date +%s)"

    echo "📊 Generating business reports..."
    echo "Report ID: $report_id"

    # a report file in /tmp, written and removed again
    local report_file="/tmp/business_report_$report_id.txt"
    echo "Total bonus: $total_bonus" > "$report_file"
    rm -f "$report_file"

    echo '{
        "report_info": {
            "report_id": "'$report_id'",
            "generated_at": "'"$generated"'",
            "total_bonus_allocated": '$total_bonus',
            "status": "completed"
        },
        "system_info": {
            "hostname": "'$(hostname)'",
            "user": "'$(whoami)'",
            "pwd": "'$(pwd)'"
        }
    }'
}
]]
        },

        create_final_summary = {
            language = "python",
            depends_on = {"fetch_api_data", "analyze_with_js", "apply_business_rules", "generate_reports"},
            code = [[
def run(inputs):
    import json
    import re

    users = inputs["fetch_api_data"]["users"]
    analytics = inputs["analyze_with_js"]["analytics"]
    rules = inputs["apply_business_rules"]

    # The shell step printed multi-line JSON, so it arrives wrapped: the JSON
    # is inside the captured stdout.
    report_text = inputs["generate_reports"]["stdout"]
    match = re.search(r"\{.*\}", report_text, re.DOTALL)
    if match:
        report = json.loads(match.group(0))
    else:
        report = {"report_info": {"report_id": "UNKNOWN"}, "system_info": {"hostname": "UNKNOWN"}}

    summary = {
        "workflow_summary": {
            "pipeline": "multi_language_pipeline",
            "status": "completed",
            "steps_completed": 5
        },
        "data_flow": {
            "initial_users": len(users),
            "average_score": round(analytics["score_stats"]["average"], 2),
            "top_performers": len(analytics["top_performers"]),
            "total_bonus_allocated": rules["reward_program"]["total_bonus_allocated"],
            "recommendations_count": len(rules["recommendations"])
        },
        "system_info": {
            "report_id": report["report_info"]["report_id"],
            "hostname": report["system_info"]["hostname"]
        },
        "language_contributions": {
            "python": "Data fetching and final summary",
            "javascript": "Statistical analytics",
            "lua": "Business rules",
            "shell": "Report generation"
        }
    }

    print("=" * 50)
    print("MULTI-LANGUAGE PIPELINE SUMMARY")
    print("=" * 50)
    print(json.dumps(summary, indent=2))
    return summary
]]
        }
    }
}
