// Package emfcheck reads the metrics out of a log line in CloudWatch Embedded
// Metric Format, checking the line against the format's specification as
// CloudWatch Logs would, for the tests: a line it accepts makes exactly the
// metrics it returns.
package emfcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Metric is one metric a line makes: a value of a metric name in a
// namespace, under one dimension set.
type Metric struct {
	Namespace string
	Name      string
	Unit      string
	// Dimensions are the dimension set's names, sorted, and Values their
	// values on the line.
	Dimensions []string
	Values     map[string]string
	Value      float64
}

// Key names the CloudWatch metric: namespace, name and dimension names.
func (m Metric) Key() string {
	return m.Namespace + "/" + m.Name + "[" + strings.Join(m.Dimensions, ",") + "]"
}

// units are the units a MetricDefinition may name (CloudWatch's MetricDatum).
var units = []string{
	"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
	"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
	"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
	"Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}

// Parse checks that line is one JSON object carrying a valid _aws member
// and returns the metrics it makes. It checks what the specification
// requires: Timestamp an integer of milliseconds; at least one directive,
// each with a Namespace, at least one dimension set of at most 9 names and
// at most 100 metric definitions, and no member the specification does not
// define; every dimension a top-level string member, every metric a
// top-level number (or array of at most 100 numbers), no name both.
func Parse(line []byte) ([]Metric, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	aws, err := object(root["_aws"], "_aws", "Timestamp", "CloudWatchMetrics")
	if err != nil {
		return nil, err
	}
	ts, ok := aws["Timestamp"].(json.Number)
	if !ok {
		return nil, errors.New("_aws.Timestamp is not a number")
	}
	if ms, err := ts.Int64(); err != nil || ms <= 0 {
		return nil, fmt.Errorf("_aws.Timestamp %s is not a positive integer of milliseconds", ts)
	}
	directives, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		return nil, errors.New("_aws.CloudWatchMetrics is not a non-empty array")
	}
	var out []Metric
	for i, d := range directives {
		ms, err := directive(root, d)
		if err != nil {
			return nil, fmt.Errorf("CloudWatchMetrics[%d]: %w", i, err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

func directive(root map[string]any, v any) ([]Metric, error) {
	d, err := object(v, "the directive", "Namespace", "Dimensions", "Metrics")
	if err != nil {
		return nil, err
	}
	ns, ok := name(d["Namespace"])
	if !ok {
		return nil, errors.New("the Namespace is not a string of 1 to 255 characters")
	}
	sets, ok := d["Dimensions"].([]any)
	if !ok || len(sets) == 0 {
		return nil, errors.New("the Dimensions member is not an array of at least one dimension set")
	}
	defs, ok := d["Metrics"].([]any)
	if !ok || len(defs) > 100 {
		return nil, errors.New("the Metrics member is not an array of at most 100 definitions")
	}
	var dimSets [][]string
	dims := map[string]string{}
	for _, s := range sets {
		set, ok := s.([]any)
		if !ok || len(set) > 9 {
			return nil, fmt.Errorf("dimension set %v is not an array of at most 9 names", s)
		}
		var names []string
		for _, n := range set {
			dim, ok := name(n)
			if !ok {
				return nil, fmt.Errorf("dimension %v is not a name of 1 to 255 characters", n)
			}
			value, ok := root[dim].(string)
			if !ok {
				return nil, fmt.Errorf("dimension %s has no top-level string member (got %T)", dim, root[dim])
			}
			dims[dim] = value
			names = append(names, dim)
		}
		slices.Sort(names)
		dimSets = append(dimSets, names)
	}
	var out []Metric
	for _, m := range defs {
		def, err := object(m, "a metric definition", "Name", "Unit", "StorageResolution")
		if err != nil {
			return nil, err
		}
		name, ok := name(def["Name"])
		if !ok {
			return nil, errors.New("a metric Name is not a string of 1 to 255 characters")
		}
		unit := "None"
		if u, present := def["Unit"]; present {
			if unit, ok = u.(string); !ok || !slices.Contains(units, unit) {
				return nil, fmt.Errorf("metric %s: Unit %v is not a CloudWatch unit", name, u)
			}
		}
		if _, clash := dims[name]; clash {
			return nil, fmt.Errorf("%s is both a metric and a dimension", name)
		}
		value, err := metricValue(root[name])
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		for _, set := range dimSets {
			values := make(map[string]string, len(set))
			for _, n := range set {
				values[n] = dims[n]
			}
			out = append(out, Metric{Namespace: ns, Name: name, Unit: unit, Dimensions: set, Values: values, Value: value})
		}
	}
	return out, nil
}

// metricValue reads a metric's target member: a number, or an array of at
// most 100 numbers (their sum is returned).
func metricValue(v any) (float64, error) {
	switch v := v.(type) {
	case json.Number:
		return v.Float64()
	case []any:
		if len(v) == 0 || len(v) > 100 {
			return 0, errors.New("an array of values must hold 1 to 100 numbers")
		}
		var sum float64
		for _, e := range v {
			n, ok := e.(json.Number)
			if !ok {
				return 0, fmt.Errorf("value %v is not a number", e)
			}
			f, err := n.Float64()
			if err != nil {
				return 0, err
			}
			sum += f
		}
		return sum, nil
	case nil:
		return 0, errors.New("no top-level member")
	}
	return 0, fmt.Errorf("the top-level member is %T, not a number", v)
}

// name reads a namespace, dimension or metric name: 1 to 255 characters.
func name(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok && s != "" && len(s) <= 255
}

// object reads a JSON object that may hold only the allowed members.
func object(v any, what string, allowed ...string) (map[string]any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", what)
	}
	for k := range obj {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("%s has member %q the specification does not define", what, k)
		}
	}
	return obj, nil
}
