package config

import (
	"strings"
	"testing"
)

const (
	testSalt16 = "AAECAwQFBgcICQoLDA0ODw"                      // 16 bytes
	testHash32 = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM" // 32 bytes
	testSalt7  = "AAECAwQFBg"                                  // 7 bytes
	testSalt65 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A"
	testBcrypt = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
)

func argon(params string) string {
	return "$argon2id$v=19$" + params + "$" + testSalt16 + "$" + testHash32
}

func TestCheckPasswordHashValid(t *testing.T) {
	tests := []struct{ name, hash string }{
		{"argon2id OWASP parameters", argon("m=19456,t=2,p=1")},
		{"argon2id at the caps", argon("m=1048576,t=10,p=16")},
		{"argon2id smallest memory for one lane", argon("m=8,t=1,p=1")},
		{"bcrypt 2a", testBcrypt},
		{"bcrypt 2b", "$2b$" + testBcrypt[4:]},
		{"bcrypt 2y cost 31", "$2y$31" + testBcrypt[6:]},
		{"bcrypt cost 04", "$2b$04" + testBcrypt[6:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkPasswordHash(tt.hash); err != nil {
				t.Fatalf("checkPasswordHash(%q) = %v, want nil", tt.hash, err)
			}
		})
	}
}

func TestCheckPasswordHashMalformed(t *testing.T) {
	tests := []struct{ name, hash, want string }{
		{"empty", "", "is empty"},
		{"plaintext", "hunter2", "is not an argon2id or bcrypt hash"},
		{"too long", "$argon2id$" + strings.Repeat("a", 600), "is 610 bytes long"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + testSalt16 + "$" + testHash32, "only argon2id is accepted"},
		{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$" + testSalt16 + "$" + testHash32, "only argon2id is accepted"},
		{"scrypt", "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E", "is not an argon2id or bcrypt hash"},
		{"missing version", "$argon2id$m=19456,t=2,p=1$" + testSalt16 + "$" + testHash32, "PHC form"},
		{"old version", "$argon2id$v=16$m=19456,t=2,p=1$" + testSalt16 + "$" + testHash32, "unsupported version"},
		{"too many fields", argon("m=19456,t=2,p=1") + "$x", "PHC form"},
		{"parameters out of order", argon("t=2,m=19456,p=1"), "not m=…,t=…,p=…"},
		{"missing parameter", argon("m=19456,t=2"), "not m=…,t=…,p=…"},
		{"extra parameter", argon("m=19456,t=2,p=1,x=1"), "not m=…,t=…,p=…"},
		{"memory bomb", argon("m=4294967295,t=2,p=1"), "parameter m=4294967295; want 1 to 1048576"},
		{"memory over 1 GiB", argon("m=1048577,t=1,p=1"), "parameter m=1048577"},
		{"time bomb", argon("m=19456,t=11,p=1"), "parameter t=11; want 1 to 10"},
		{"thread bomb", argon("m=19456,t=2,p=17"), "parameter p=17; want 1 to 16"},
		{"zero passes", argon("m=19456,t=0,p=1"), "parameter t=0"},
		{"memory below 8 KiB per lane", argon("m=15,t=1,p=2"), "below 8 KiB per lane"},
		{"signed number", argon("m=+19456,t=2,p=1"), "parameter m that is not a number"},
		{"huge number", argon("m=99999999999999999999,t=2,p=1"), "parameter m that is not a number"},
		{"hex number", argon("m=0x4c00,t=2,p=1"), "parameter m that is not a number"},
		{"empty number", argon("m=,t=2,p=1"), "parameter m that is not a number"},
		{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$" + testSalt16 + "==$" + testHash32, "salt that is not unpadded base64"},
		{"url-safe salt", "$argon2id$v=19$m=19456,t=2,p=1$" + "AAECAwQFBgcICQoLDA0OD_" + "$" + testHash32, "salt that is not unpadded base64"},
		{"short salt", "$argon2id$v=19$m=19456,t=2,p=1$" + testSalt7 + "$" + testHash32, "salt of 7 bytes; want 8 to 64"},
		{"long salt", "$argon2id$v=19$m=19456,t=2,p=1$" + testSalt65 + "$" + testHash32, "salt of 65 bytes"},
		{"short hash", "$argon2id$v=19$m=19456,t=2,p=1$" + testSalt16 + "$" + testSalt7, "hash of 7 bytes; want 16 to 64"},
		{"empty hash", "$argon2id$v=19$m=19456,t=2,p=1$" + testSalt16 + "$", "hash of 0 bytes"},
		{"bcrypt short", testBcrypt[:59], "is not a bcrypt hash"},
		{"bcrypt long", testBcrypt + "x", "is not a bcrypt hash"},
		{"bcrypt cost 03", "$2b$03" + testBcrypt[6:], "cost that is not 04 to 31"},
		{"bcrypt cost 32", "$2b$32" + testBcrypt[6:], "cost that is not 04 to 31"},
		{"bcrypt cost letters", "$2b$1a" + testBcrypt[6:], "cost that is not 04 to 31"},
		{"bcrypt missing separator", "$2b$10x" + testBcrypt[7:], "is not a bcrypt hash"},
		{"bcrypt bad alphabet", testBcrypt[:59] + "+", "outside bcrypt's base64 alphabet"},
		{"bcrypt 2x", "$2x$" + testBcrypt[4:], "is not an argon2id or bcrypt hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPasswordHash(tt.hash)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkPasswordHash(%q) = %v, want an error containing %q", tt.hash, err, tt.want)
			}
			if len(tt.hash) > 8 && strings.Contains(err.Error(), tt.hash) {
				t.Errorf("error %q repeats the value", err)
			}
		})
	}
}

// FuzzCheckPasswordHash checks that no input makes the hash parser panic,
// and that an accepted hash has one of the accepted prefixes and bounded
// length.
func FuzzCheckPasswordHash(f *testing.F) {
	for _, s := range []string{
		argon("m=19456,t=2,p=1"), argon("m=4294967295,t=2,p=1"), argon("m=1,t=1,p=1"),
		testBcrypt, "$2b$99" + testBcrypt[6:], "", "$", "$argon2id$", "$argon2id$v=19$$$$", "$2a$",
		"$argon2id$v=19$m=19456,t=2,p=1$" + testSalt16 + "==$" + testHash32,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := checkPasswordHash(s); err != nil {
			return
		}
		if len(s) > maxHashLen {
			t.Fatalf("accepted a %d-byte hash", len(s))
		}
		if !strings.HasPrefix(s, "$argon2id$v=19$") && !strings.HasPrefix(s, "$2a$") &&
			!strings.HasPrefix(s, "$2b$") && !strings.HasPrefix(s, "$2y$") {
			t.Fatalf("accepted %q", s)
		}
	})
}
