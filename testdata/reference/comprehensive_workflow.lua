-- Reconstruction of the reference engine's workflows/comprehensive_workflow.lua
-- (seed-behaviour.md 9 item 10): lua_config -> python_data_gen ->
-- shell_system_info -> shell_file_ops -> python_analysis -> lua_finalize ->
-- shell_cleanup, with python_analysis also reading python_data_gen and
-- lua_finalize also reading shell_file_ops. shell_file_ops makes a
-- workspace in /tmp and shell_cleanup finds it again by grepping
-- "workspace_used":"..." out of lua_finalize's compact JSON (9.1).
workflow = {
    name = "comprehensive_multi_language_pipeline",
    description = "Every language in one pipeline: configuration, data, system info, files, analysis, cleanup",

    steps = {
        lua_config = {
            language = "lua",
            code = [[
function run()
    print("Setting up configuration in Lua...")
    return {
        config = {
            batch_size = 100,
            enable_logging = true,
            output_format = "json"
        },
        metadata = {
            created_by = "lua",
            timestamp = os.date("%Y-%m-%d %H:%M:%S")
        }
    }
end
]]
        },

        python_data_gen = {
            language = "python",
            depends_on = {"lua_config"},
            code = [[
def run(inputs):
    import random
    config = inputs["lua_config"]["config"]
    batch_size = config["batch_size"]
    print(f"Generating {batch_size} items in Python...")

    items = []
    for i in range(batch_size):
        items.append({
            "id": i + 1,
            "value": random.randint(1, 1000),
            "category": random.choice(["A", "B", "C"])
        })
    values = [item["value"] for item in items]

    return {
        "data": items[:10],
        "stats": {
            "count": len(values),
            "min": min(values),
            "max": max(values),
            "avg": sum(values) / len(values)
        },
        "total_generated": len(items),
        "processing_status": "completed"
    }
]]
        },

        shell_system_info = {
            language = "bash",
            depends_on = {"python_data_gen"},
            code = [[
run() {
    echo "Collecting system information..."
    local os_info=$(uname -a)
    local disk_usage=$(df -h / | awk 'NR==2 {print $5}')
    local memory_info=$(free -h 2>/dev/null || echo "unavailable")
    local current_user=$(whoami)
    local working_dir=$(pwd)
    local generated=$(echo "$INPUT_PYTHON_DATA_GEN" | grep -o '"total_generated":[0-9]*' | cut -d: -f2)
    echo "Python generated $generated records"
    cat <<EOF
{
  "system_info": {
    "os": "$os_info",
    "disk_usage": "$disk_usage",
    "memory": "$memory_info",
    "user": "$current_user",
    "working_directory": "$working_dir"
  },
  "data_processing": {
    "records_processed": $generated
  },
  "shell_status": "system_info_collected"
}
EOF
}
]]
        },

        shell_file_ops = {
            language = "shell",
            depends_on = {"shell_system_info"},
            code = [[
run() {
    echo "Creating files..."
    local workspace="/tmp/workflow_$$"
    mkdir -p "$workspace"

    echo "Workflow report generated at $(date)" > "$workspace/report.txt"
    echo "Previous step:" >> "$workspace/report.txt"
    parse_input shell_system_info | head -c 200 >> "$workspace/report.txt"
    echo >> "$workspace/report.txt"

    echo "id,value,category" > "$workspace/sample_data.csv"
    for i in 1 2 3; do
        echo "$i,$((i * 100)),A" >> "$workspace/sample_data.csv"
    done

    local count=$(ls -1 "$workspace" | wc -l)
    local size=$(find "$workspace" -type f -exec wc -c {} + | tail -1 | awk '{print $1}')
    echo "Created $count files ($size bytes) in $workspace"
    echo "{\"temp_workspace\": \"$workspace\", \"files_created\": $count, \"total_size_bytes\": $size, \"files\": [\"report.txt\", \"sample_data.csv\"], \"status\": \"files_ready\"}"
}
]]
        },

        python_analysis = {
            language = "python",
            depends_on = {"python_data_gen", "shell_file_ops"},
            code = [[
def run(inputs):
    data = inputs["python_data_gen"]
    files = inputs["shell_file_ops"]
    stats = data["stats"]

    recommendations = []
    if stats["avg"] > 500:
        recommendations.append("High average values detected - consider scaling")
    if files["files_created"] > 0:
        recommendations.append("Files successfully created for further processing")

    return {
        "analysis": {
            "data_quality": {
                "range_spread": stats["max"] - stats["min"],
                "avg_value": round(stats["avg"], 2),
                "data_points": stats["count"]
            },
            "file_operations": {
                "workspace": files["temp_workspace"],
                "files_created": files["files_created"],
                "total_size": files["total_size_bytes"]
            },
            "recommendations": recommendations
        },
        "processing_complete": True,
        "next_actions": ["finalize_results", "cleanup_workspace"],
        "python_status": "analysis_complete"
    }
]]
        },

        lua_finalize = {
            language = "lua",
            depends_on = {"python_analysis", "shell_file_ops"},
            code = [[
function run(inputs)
    local analysis = inputs.python_analysis.analysis
    local files = inputs.shell_file_ops
    print("Finalizing in Lua:")
    print("  data points:", analysis.data_quality.data_points)
    print("  files created:", files.files_created)
    return {
        workflow_name = "comprehensive_multi_language_pipeline",
        steps_completed = 6,
        languages_used = {"lua", "python", "shell", "bash"},
        processing_stats = {
            data_points = analysis.data_quality.data_points,
            avg_value = analysis.data_quality.avg_value,
            files_created = files.files_created,
            workspace_used = files.temp_workspace
        },
        recommendations = analysis.recommendations,
        final_status = "SUCCESS",
        completed_at = os.date("%Y-%m-%d %H:%M:%S")
    }
end
]]
        },

        shell_cleanup = {
            language = "bash",
            depends_on = {"lua_finalize"},
            code = [[
run() {
    echo "Cleaning up..."
    local workspace=$(parse_input "lua_finalize" | grep -o '"workspace_used":"[^"]*"' | cut -d'"' -f4)
    if [ -n "$workspace" ] && [ -d "$workspace" ]; then
        ls -la "$workspace"
        rm -rf "$workspace"
        echo "Removed $workspace"
    else
        echo "Nothing to clean up"
    fi
    echo '{"cleanup_status": "completed", "workspace_removed": true, "final_step": true}'
}
]]
        }
    }
}
