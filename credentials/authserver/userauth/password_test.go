package userauth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

func TestHashPasswordRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		password string
	}{
		{"ascii", "correct horse battery staple"},
		{"one byte", "x"},
		{"unicode", "pässwörd 密码 🔑"},
		{"max length", strings.Repeat("a", maxPasswordLen)},
		{"spaces and NUL", " a\x00b "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash, err := HashPassword(tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
				t.Fatalf("hash %q lacks the OWASP argon2id prefix", hash)
			}
			h, err := parseHash(hash)
			if err != nil {
				t.Fatal(err)
			}
			if len(h.salt) != 16 || len(h.key) != 32 {
				t.Errorf("salt %d bytes, hash %d bytes; want 16 and 32", len(h.salt), len(h.key))
			}
			if err := CheckHash(hash); err != nil {
				t.Errorf("CheckHash: %v", err)
			}
			if ok, err := VerifyPassword(hash, tt.password); err != nil || !ok {
				t.Errorf("VerifyPassword(right) = %v, %v", ok, err)
			}
			if ok, err := VerifyPassword(hash, tt.password+"x"); err != nil || ok {
				t.Errorf("VerifyPassword(wrong) = %v, %v", ok, err)
			}
		})
	}
}

func TestHashPasswordSaltsDiffer(t *testing.T) {
	a, err := HashPassword("same")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPassword("same")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two hashes of one password are equal: %q", a)
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	for _, pw := range []string{"", strings.Repeat("a", maxPasswordLen+1)} {
		if h, err := HashPassword(pw); err == nil {
			t.Errorf("HashPassword(%d bytes) = %q, want an error", len(pw), h)
		}
	}
}

// TestArgon2idKnownAnswer checks the encoding against a hash computed here
// with x/crypto from a fixed salt, with default and other parameters.
func TestArgon2idKnownAnswer(t *testing.T) {
	salt := []byte("0123456789abcdef")
	tests := []struct {
		name           string
		time, memory   uint32
		threads        uint8
		saltLen, keyLn int
	}{
		{"owasp", 2, 19456, 1, 16, 32},
		{"small", 1, 64, 2, 8, 16},
		{"long salt and hash", 3, 256, 4, 16, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := salt[:tt.saltLen]
			key := argon2.IDKey([]byte("hunter2"), s, tt.time, tt.memory, tt.threads, uint32(tt.keyLn))
			enc := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", tt.memory, tt.time, tt.threads,
				base64.RawStdEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(key))
			h, err := parseHash(enc)
			if err != nil {
				t.Fatal(err)
			}
			if h.kind != kindArgon2id || h.time != tt.time || h.memory != tt.memory || h.threads != tt.threads ||
				string(h.salt) != string(s) || string(h.key) != string(key) {
				t.Errorf("parsed %+v", h)
			}
			if ok, err := VerifyPassword(enc, "hunter2"); err != nil || !ok {
				t.Errorf("VerifyPassword(right) = %v, %v", ok, err)
			}
			if ok, err := VerifyPassword(enc, "hunter3"); err != nil || ok {
				t.Errorf("VerifyPassword(wrong) = %v, %v", ok, err)
			}
		})
	}
	// The encoder and the x/crypto computation agree for the default
	// parameters: a hash built by hand from HashPassword's salt matches.
	hash, err := HashPassword("hunter2")
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHash(hash)
	if err != nil {
		t.Fatal(err)
	}
	want := argon2.IDKey([]byte("hunter2"), h.salt, 2, 19456, 1, 32)
	if string(want) != string(h.key) {
		t.Error("HashPassword's hash differs from argon2.IDKey with the same salt")
	}
}

func TestBcryptKnownAnswer(t *testing.T) {
	gen, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("b", 72)
	genLong, err := bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	body := string(gen)[3:] // "04$" + salt + hash
	tests := []struct {
		name, hash, password string
		want                 bool
	}{
		{"2a right", "$2a" + body, "hunter2", true},
		{"2b right", "$2b" + body, "hunter2", true},
		{"2y right", "$2y" + body, "hunter2", true},
		{"2b wrong", "$2b" + body, "hunter3", false},
		{"2b empty password", "$2b" + body, "", false},
		{"72 bytes right", string(genLong), long, true},
		{"73 bytes refused", string(genLong), long + "b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckHash(tt.hash); err != nil {
				t.Fatalf("CheckHash: %v", err)
			}
			ok, err := VerifyPassword(tt.hash, tt.password)
			if err != nil || ok != tt.want {
				t.Errorf("VerifyPassword = %v, %v; want %v", ok, err, tt.want)
			}
		})
	}
}

func TestVerifyPasswordRejectsPasswords(t *testing.T) {
	hash := cheapArgon(t, "secret")
	for _, pw := range []string{"", strings.Repeat("s", maxPasswordLen+1), "Secret", "secret "} {
		if ok, err := VerifyPassword(hash, pw); err != nil || ok {
			t.Errorf("VerifyPassword(%.20q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}

// cheapArgon hashes password with the smallest accepted parameters.
func cheapArgon(t testing.TB, password string) string {
	t.Helper()
	salt := []byte("saltsalt")
	key := argon2.IDKey([]byte(password), salt, 1, 8, 1, 16)
	return "$argon2id$v=19$m=8,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" +
		base64.RawStdEncoding.EncodeToString(key)
}

func TestMalformedHash(t *testing.T) {
	b64 := func(n int) string { return base64.RawStdEncoding.EncodeToString(make([]byte, n)) }
	salt, key := b64(16), b64(32)
	argon := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	bc := "$2b$04$" + strings.Repeat("a", 53)
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"unknown scheme", "$scrypt$ln=16,r=8,p=1$aaaa$bbbb"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"too few parts", "$argon2id$v=19$m=19456,t=2,p=1$" + salt},
		{"too many parts", argon("m=19456,t=2,p=1") + "$"},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"version 16", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key},
		{"memory bomb uint32", argon("m=4294967295,t=2,p=1")},
		{"memory over 1 GiB", argon("m=1048577,t=2,p=1")},
		{"memory 11 digits", argon("m=10000000000,t=2,p=1")},
		{"memory zero", argon("m=0,t=2,p=1")},
		{"memory below 8 per lane", argon("m=63,t=1,p=8")},
		{"time zero", argon("m=19456,t=0,p=1")},
		{"time bomb", argon("m=19456,t=4294967295,p=1")},
		{"time 11", argon("m=19456,t=11,p=1")},
		{"threads zero", argon("m=19456,t=2,p=0")},
		{"threads 17", argon("m=19456,t=2,p=17")},
		{"threads 256", argon("m=19456,t=2,p=256")},
		{"params reordered", argon("t=2,m=19456,p=1")},
		{"params missing", argon("m=19456,t=2")},
		{"params extra", argon("m=19456,t=2,p=1,k=1")},
		{"param signed", argon("m=+19456,t=2,p=1")},
		{"param negative", argon("m=19456,t=-2,p=1")},
		{"param hex", argon("m=0x4c00,t=2,p=1")},
		{"param space", argon("m=19456, t=2,p=1")},
		{"param empty", argon("m=,t=2,p=1")},
		{"salt not base64", "$argon2id$v=19$m=19456,t=2,p=1$!!!!!!!!!!!$" + key},
		{"salt padded", "$argon2id$v=19$m=19456,t=2,p=1$" + base64.StdEncoding.EncodeToString(make([]byte, 16)) + "$" + key},
		{"salt url alphabet", "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("_", 22) + "$" + key},
		{"salt too short", "$argon2id$v=19$m=19456,t=2,p=1$" + b64(7) + "$" + key},
		{"salt too long", "$argon2id$v=19$m=19456,t=2,p=1$" + b64(65) + "$" + key},
		{"hash too short", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + b64(15)},
		{"hash too long", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + b64(65)},
		{"hash empty", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$"},
		{"overlong", argon("m=19456,t=2,p=1") + strings.Repeat("A", maxHashLen)},
		{"leading space", " " + argon("m=19456,t=2,p=1")},
		{"bcrypt short", bc[:59]},
		{"bcrypt long", bc + "a"},
		{"bcrypt cost 03", "$2b$03$" + bc[7:]},
		{"bcrypt cost 32", "$2b$32$" + bc[7:]},
		{"bcrypt cost 99", "$2b$99$" + bc[7:]},
		{"bcrypt cost letters", "$2b$ab$" + bc[7:]},
		{"bcrypt no separator", "$2b$04x" + bc[7:]},
		{"bcrypt 2x", "$2x$04$" + bc[7:]},
		{"bcrypt 2", "$2$04$" + bc[7:] + "a"},
		{"bcrypt bad char", "$2b$04$" + strings.Repeat("a", 52) + "+"},
		{"bcrypt NUL", "$2b$04$" + strings.Repeat("a", 52) + "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckHash(tt.hash)
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("CheckHash = %v, want ErrBadHash", err)
			}
			if len(tt.hash) >= 16 && strings.Contains(err.Error(), tt.hash) {
				t.Errorf("error quotes the hash: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "userauth: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			ok, err := VerifyPassword(tt.hash, "hunter2")
			if ok || !errors.Is(err, ErrBadHash) {
				t.Errorf("VerifyPassword = %v, %v; want false, ErrBadHash", ok, err)
			}
		})
	}
}

func TestDummyHashMatchesDefaults(t *testing.T) {
	d, err := parseHash(dummyHash)
	if err != nil {
		t.Fatal(err)
	}
	if d.kind != kindArgon2id || d.memory != argonMemory || d.time != argonTime || d.threads != argonThreads ||
		len(d.salt) != argonSaltLen || len(d.key) != argonKeyLen {
		t.Errorf("dummy hash parameters %+v differ from HashPassword's", d)
	}
	if !strings.HasPrefix(dummyHash, argonPrefix) {
		t.Errorf("dummy hash lacks prefix %q", argonPrefix)
	}
}

// FuzzVerifyPassword fuzzes the hash parser. Hashes it accepts with cheap
// parameters are also verified, which must then not fail.
func FuzzVerifyPassword(f *testing.F) {
	gen, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"", "$", "$$$$$", "$argon2id$", cheapArgon(f, "pw"), dummyHash, string(gen),
		"$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdA",
		"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdA==",
		"$2b$04$" + strings.Repeat(".", 53), "$2y$31$" + strings.Repeat("z", 53),
	} {
		f.Add(s, "pw")
	}
	f.Fuzz(func(t *testing.T, encoded, password string) {
		h, err := parseHash(encoded)
		if checkErr := CheckHash(encoded); (err == nil) != (checkErr == nil) {
			t.Fatalf("parseHash and CheckHash disagree: %v, %v", err, checkErr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("error %v does not wrap ErrBadHash", err)
			}
			return
		}
		switch h.kind {
		case kindArgon2id:
			if h.memory == 0 || h.memory > maxArgonMemory || h.time == 0 || h.time > maxArgonTime ||
				h.threads == 0 || h.threads > maxArgonThreads || uint32(h.threads)*8 > h.memory ||
				len(h.salt) < minArgonSalt || len(h.salt) > maxArgonSalt || len(h.key) < minArgonKey || len(h.key) > maxArgonKey {
				t.Fatalf("accepted out-of-bounds parameters %+v", h)
			}
			if h.memory > 64 || h.time > 2 {
				return
			}
		case kindBcrypt:
			if h.cost < bcrypt.MinCost || h.cost > bcrypt.MaxCost {
				t.Fatalf("accepted bcrypt cost %d", h.cost)
			}
			if h.cost > 5 {
				return
			}
		default:
			t.Fatalf("parsed kind %d", h.kind)
		}
		if _, err := VerifyPassword(encoded, password); err != nil {
			t.Fatalf("VerifyPassword of an accepted hash: %v", err)
		}
	})
}

func BenchmarkVerifyPassword(b *testing.B) {
	hash, err := HashPassword("benchmark password")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := VerifyPassword(hash, "benchmark password"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
