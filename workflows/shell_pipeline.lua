-- A file-processing pipeline in bash.
--
-- Shell steps run with bash under `set -e`, in the run's scratch folder
-- (shared by the run's steps and removed afterwards). A dependency's output
-- is in $INPUT_<NAME> as compact JSON (the name upper-cased, other
-- characters turned into "_": count-lines becomes INPUT_COUNT_LINES), and
-- `parse_input <name>` prints it. If the code defines run, it is called
-- after the top level. The output is the first stdout line that is a JSON
-- object on its own; otherwise it is {"exit_code":0,"stderr":...,"stdout":...}.
-- Unlike the reference, a ' in the data or a dash in a step name cannot break
-- the script, and everything printed goes to the step's log.
workflow = {
  name = "shell_pipeline",
  description = "Write CSV files, count their lines, fingerprint them and summarise, in bash",

  steps = {
    make_files = {
      language = "bash",
      code = [[
run() {
    mkdir -p data
    printf 'id,name\n1,ada\n2,brian\n' > data/people.csv
    printf 'id,city\n1,Oslo\n2,Lima\n3,Kyoto\n' > data/cities.csv
    echo "wrote $(ls data | wc -l) files"
    # The label holds a ' : it reaches later steps intact.
    echo '{"folder": "data", "files": ["cities.csv", "people.csv"], "label": "it'"'"'s ready"}'
}
]],
    },

    ["count-lines"] = {
      language = "shell",
      depends_on = { "make_files" },
      code = [[
run() {
    local folder
    folder=$(parse_input make_files | grep -o '"folder":"[^"]*"' | cut -d'"' -f4)
    local people cities
    people=$(($(wc -l < "$folder/people.csv") - 1))
    cities=$(($(wc -l < "$folder/cities.csv") - 1))
    echo "{\"people\": $people, \"cities\": $cities, \"rows\": $((people + cities))}"
}
]],
    },

    fingerprint = {
      language = "sh",
      depends_on = { "make_files" },
      code = [[
# No run function and no JSON line: the output is the stdout/stderr wrapper.
cd data
for f in cities.csv people.csv; do
    echo "$f $(cksum < "$f" | cut -d' ' -f1)"
done
]],
    },

    summary = {
      language = "bash",
      depends_on = { "make_files", "count-lines", "fingerprint" },
      code = [[
rows=$(printf '%s' "$INPUT_COUNT_LINES" | grep -o '"rows":[0-9]*' | cut -d: -f2)
label=$(parse_input make_files | sed -n 's/.*"label":"\([^"]*\)".*/\1/p')
sums=$(printf '%s' "$INPUT_FINGERPRINT" | grep -o 'csv [0-9]*' | wc -l)
echo "summary: $rows rows, label: $label"
echo "{\"rows\": $rows, \"fingerprinted\": $sums, \"label_length\": ${#label}}"
]],
    },
  },
}
