-- Reconstruction of the reference engine's workflows/pure_shell_workflow.lua
-- (seed-behaviour.md 9 item 4): four shell steps sharing a folder in /tmp.
-- The steps print their JSON with spaces and progress lines before it; the
-- engine keeps the first one-line JSON object and stores it compact, and
-- each later step finds the folder by grepping "temp_dir":"..." out of that
-- compact JSON (9.1). With spaces after ':' the grep would find nothing and
-- the folder would be left behind.
workflow = {
    name = "file_processing_pipeline",
    description = "Create, process, measure and clean up files with shell steps",

    steps = {
        create_files = {
            language = "bash",
            code = [[
run() {
    local temp_dir="/tmp/workflow_test_$$"
    mkdir -p "$temp_dir"
    for n in 1 2 3; do
        echo "sample file $n" > "$temp_dir/file$n.txt"
    done
    local count=$(ls "$temp_dir"/*.txt 2>/dev/null | wc -l)
    echo "{\"temp_dir\": \"$temp_dir\", \"files_created\": $count, \"status\": \"files_ready\"}"
}
]]
        },

        process_files = {
            language = "shell",
            depends_on = {"create_files"},
            code = [[
run() {
    local temp_dir=$(parse_input "create_files" | grep -o '"temp_dir":"[^"]*"' | cut -d'"' -f4)
    local processed=0
    for f in "$temp_dir"/*.txt; do
        if [ -f "$f" ]; then
            {
                echo "Processed at: $(date)"
                tr '[:lower:]' '[:upper:]' < "$f"
            } > "${f%.txt}_processed.txt"
            processed=$((processed + 1))
        fi
    done
    echo "{\"temp_dir\": \"$temp_dir\", \"processed_files\": $processed, \"status\": \"processing_complete\"}"
}
]]
        },

        generate_stats = {
            language = "bash",
            depends_on = {"process_files"},
            code = [[
run() {
    echo "Collecting statistics..."
    local temp_dir=$(echo "$INPUT_PROCESS_FILES" | grep -o '"temp_dir":"[^"]*"' | cut -d'"' -f4)
    local total=$(find "$temp_dir" -name "*.txt" | wc -l)
    local processed=$(find "$temp_dir" -name "*_processed.txt" | wc -l)
    local original=$((total - processed))
    local size=$(find "$temp_dir" -type f -exec wc -c {} + | tail -1 | awk '{print $1}')
    echo "- total files: $total"
    echo "- total size: $size bytes"
    echo "{\"stats\": {\"total_files\": $total, \"original_files\": $original, \"processed_files\": $processed, \"total_size_bytes\": $size}, \"temp_dir\": \"$temp_dir\"}"
}
]]
        },

        cleanup = {
            language = "bash",
            depends_on = {"generate_stats"},
            code = [[
run() {
    local temp_dir=$(parse_input "generate_stats" | grep -o '"temp_dir":"[^"]*"' | cut -d'"' -f4)
    echo "Removing:"
    ls -la "$temp_dir"
    rm -rf "$temp_dir"
    echo "{\"status\": \"cleanup_complete\", \"temp_dir_removed\": \"$temp_dir\"}"
}
]]
        }
    }
}
