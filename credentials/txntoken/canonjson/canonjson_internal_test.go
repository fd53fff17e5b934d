package canonjson

import "testing"

func TestCanonicalNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0"},
		{"-0", "0"},
		{"0.000", "0"},
		{"0e10", "0"},
		{"3", "3"},
		{"3.0", "3"},
		{"3.10", "3.1"},
		{"-3.10", "-3.1"},
		{"30", "30"},
		{"1e2", "100"},
		{"1E+2", "100"},
		{"100e-2", "1"},
		{"0.05", "0.05"},
		{"5e-2", "0.05"},
		{"123.456", "123.456"},
		{"1e20", "100000000000000000000"},
		{"1e21", "1e+21"},
		{"1e22", "1e+22"},
		{"12e21", "1.2e+22"},
		{"0.000001", "0.000001"},
		{"0.0000001", "1e-7"},
		{"-1.5e-9", "-1.5e-9"},
		{"9007199254740993", "9007199254740993"},
		{"00", ""}, // not a JSON number
		{"1.", ""},
		{".5", ""},
		{"1e", ""},
		{"+1", ""},
		{"1e99999999999999999999", ""},
		{"1e4000000", ""},
	}
	for _, tt := range tests {
		got, err := canonicalNumber(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("canonicalNumber(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("canonicalNumber(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
