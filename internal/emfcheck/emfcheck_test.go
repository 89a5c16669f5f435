package emfcheck

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := `{"_aws":{"Timestamp":1796096227902,"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[["fn"],[]],"Metrics":[{"Name":"n","Unit":"Count"},{"Name":"v"}]}]},"fn":"login","n":1,"v":[1,2.5]}`
	ms, err := Parse([]byte(good))
	if err != nil {
		t.Fatalf("a valid document: %v", err)
	}
	if len(ms) != 4 || ms[0].Key() != "ns/n[fn]" || ms[0].Values["fn"] != "login" || ms[1].Key() != "ns/n[]" || ms[2].Unit != "None" || ms[3].Value != 3.5 {
		t.Fatalf("got %+v, want n and v under [fn] and []", ms)
	}
	bad := map[string]string{
		"no _aws":                 `{"n":1}`,
		"float timestamp":         strings.Replace(good, `1796096227902`, `1796096227902.5`, 1),
		"string timestamp":        strings.Replace(good, `1796096227902`, `"1796096227902"`, 1),
		"no timestamp":            strings.Replace(good, `"Timestamp":1796096227902,`, ``, 1),
		"dimension not a string":  strings.Replace(good, `"fn":"login"`, `"fn":1`, 1),
		"dimension missing":       strings.Replace(good, `"fn":"login",`, ``, 1),
		"metric not a number":     strings.Replace(good, `"n":1`, `"n":"1"`, 1),
		"metric missing":          strings.Replace(good, `"n":1,`, ``, 1),
		"nested metric":           strings.Replace(good, `"n":1`, `"n":{"v":1}`, 1),
		"bad unit":                strings.Replace(good, `"Count"`, `"Requests"`, 1),
		"no dimension sets":       strings.Replace(good, `[["fn"],[]]`, `[]`, 1),
		"ten dimensions":          strings.Replace(good, `[["fn"],[]]`, `[["fn","fn","fn","fn","fn","fn","fn","fn","fn","fn"]]`, 1),
		"unknown directive field": strings.Replace(good, `"Namespace":"ns"`, `"Namespace":"ns","Extra":1`, 1),
		"empty namespace":         strings.Replace(good, `"Namespace":"ns"`, `"Namespace":""`, 1),
		"trailing data":           good + `x`,
	}
	for name, doc := range bad {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
}
