package main

import (
	"io"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		want    int // scenarios
	}{
		{"defaults", nil, false, 4},
		{"one scenario", []string{"-scenarios", "intake", "-n", "10"}, false, 1},
		{"ceiling only", []string{"-scenarios", "ceiling", "-ceiling-n", "100"}, false, 1},
		{"ceiling listed last", []string{"-scenarios", "intake, ceiling"}, false, 2},
		{"bad ceiling-n", []string{"-scenarios", "ceiling", "-ceiling-n", "0"}, true, 0},
		{"unknown scenario", []string{"-scenarios", "intake,soak"}, true, 0},
		{"empty scenarios", []string{"-scenarios", ","}, true, 0},
		{"bad n", []string{"-n", "0"}, true, 0},
		{"bad concurrency", []string{"-concurrency", "5000"}, true, 0},
		{"stray argument", []string{"extra"}, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err == nil && len(o.scenarios) != tc.want {
				t.Fatalf("scenarios %v, want %d", o.scenarios, tc.want)
			}
		})
	}
}

func TestParseFlagsCeiling(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.scenarios[0] != "ceiling" || o.ceilingOps != 5000 {
		t.Fatalf("defaults: scenarios %v, ceiling-n %d; want ceiling first, 5000", o.scenarios, o.ceilingOps)
	}
	if o, err = parseFlags([]string{"-scenarios", "ceiling", "-ceiling-n", "250"}, io.Discard); err != nil || o.ceilingOps != 250 {
		t.Fatalf("ceiling-n 250: %d, %v", o.ceilingOps, err)
	}
}

func TestPercentileMs(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{50, 50}, {95, 95}, {99, 99}, {100, 100}} {
		if got := percentileMs(d, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentileMs(nil, 99); got != 0 {
		t.Errorf("empty p99 = %v", got)
	}
	if got := percentileMs([]time.Duration{7 * time.Millisecond}, 50); got != 7 {
		t.Errorf("single p50 = %v", got)
	}
}
