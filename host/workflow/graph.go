package workflow

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Graph renders the workflow's DAG as "dot" (Graphviz), "mermaid" or "json".
func Graph(w *Workflow, format string) ([]byte, error) {
	switch format {
	case "dot", "":
		return graphDOT(w), nil
	case "mermaid":
		return graphMermaid(w), nil
	case "json":
		return graphJSON(w)
	}
	return nil, fmt.Errorf("unknown graph format %q (use dot, mermaid or json)", format)
}

func graphDOT(w *Workflow) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n", quoteDOT(w.Name))
	for _, s := range w.Steps {
		fmt.Fprintf(&b, "  %s [label=%s];\n", quoteDOT(s.Name), quoteDOT(s.Name+"\n("+s.LanguageAsWritten+")"))
	}
	for _, s := range w.Steps {
		for _, d := range s.DependsOn {
			fmt.Fprintf(&b, "  %s -> %s;\n", quoteDOT(d), quoteDOT(s.Name))
		}
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

func quoteDOT(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func graphMermaid(w *Workflow) []byte {
	var b strings.Builder
	b.WriteString("graph LR\n")
	id := map[string]string{}
	for i, s := range w.Steps {
		id[s.Name] = fmt.Sprintf("s%d", i)
		label := strings.NewReplacer(`"`, "#quot;").Replace(s.Name + " (" + s.LanguageAsWritten + ")")
		fmt.Fprintf(&b, "  %s[\"%s\"]\n", id[s.Name], label)
	}
	for _, s := range w.Steps {
		for _, d := range s.DependsOn {
			fmt.Fprintf(&b, "  %s --> %s\n", id[d], id[s.Name])
		}
	}
	return []byte(b.String())
}

// GraphNode and GraphEdge are the JSON graph form.
type GraphNode struct {
	ID       string   `json:"id"`
	Language string   `json:"language"`
	Line     int      `json:"line"`
	Deps     []string `json:"depends_on"`
	Level    int      `json:"level"`
}

type GraphEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// GraphData is the JSON graph: nodes in execution order, edges dependency → dependent.
type GraphData struct {
	Name  string      `json:"name"`
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// GraphOf returns the graph structure of a workflow, with each step's level
// (0 for roots, else 1 + the highest level of its dependencies).
func GraphOf(w *Workflow) GraphData {
	g := GraphData{Name: w.Name, Nodes: []GraphNode{}, Edges: []GraphEdge{}}
	level := map[string]int{}
	for _, s := range w.Steps { // Steps are in dependency order
		lv := 0
		for _, d := range s.DependsOn {
			lv = max(lv, level[d]+1)
		}
		level[s.Name] = lv
		deps := append([]string{}, s.DependsOn...)
		g.Nodes = append(g.Nodes, GraphNode{ID: s.Name, Language: s.LanguageAsWritten, Line: s.Line, Deps: deps, Level: lv})
		for _, d := range s.DependsOn {
			g.Edges = append(g.Edges, GraphEdge{From: d, To: s.Name})
		}
	}
	return g
}

func graphJSON(w *Workflow) ([]byte, error) {
	b, err := json.MarshalIndent(GraphOf(w), "", "  ")
	return append(b, '\n'), err
}
