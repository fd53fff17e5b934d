package localapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/policy"
)

// Limits of the audit and policy endpoints.
const (
	// DefaultRecordsLimit is the number of records GET /v1/audit/records
	// returns when the request gives no limit; MaxRecordsLimit is the most
	// it returns.
	DefaultRecordsLimit = 100
	MaxRecordsLimit     = 10000
	// maxRulesBody caps the rules of POST /v1/audit/check and maxDecideBody
	// the request of POST /v1/policy/decide.
	maxRulesBody  = 1 << 20
	maxDecideBody = 1 << 20
	// maxVerifyBody caps the request of POST /v1/audit/verify: a key and
	// a checkpoint note.
	maxVerifyBody = 64 << 10
)

// ErrNotSupported is returned (wrapped) by a [Client] method when the host
// does not serve the audit and policy endpoints (501).
var ErrNotSupported = errors.New("the host does not serve the audit and policy API")

// ErrBadVerifyRequest is wrapped by an [AuditPinnedVerifier] for a key or
// checkpoint it cannot use; POST /v1/audit/verify answers 400.
var ErrBadVerifyRequest = errors.New("invalid audit verification request")

// AuditVerifyRequest is the optional body of POST /v1/audit/verify: verify
// with a verifier key and against a checkpoint the caller keeps, not with
// what the host holds.
type AuditVerifyRequest struct {
	// VerifierKey is the signed-note verifier key the caller pins; the
	// host checks signatures with it and not with its own. OPTIONAL:
	// empty means the host's own key.
	VerifierKey string `json:"verifier_key,omitempty"`
	// Checkpoint is a checkpoint note the caller kept; the log must
	// extend it (audit.AgainstCheckpoint). OPTIONAL.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// AuditPinnedVerifier is an [AuditBackend] that verifies with a key and
// against a checkpoint the caller gives (POST /v1/audit/verify with a
// body). Without it such a request answers 501.
type AuditPinnedVerifier interface {
	// AuditVerifyPinned is AuditVerify with req's key and checkpoint. It
	// MUST wrap ErrBadVerifyRequest when the key does not parse or the
	// checkpoint is not signed by it.
	AuditVerifyPinned(ctx context.Context, req AuditVerifyRequest) (AuditVerifyResult, error)
}

// AuditEntry is one audit record and its index, as GET /v1/audit/records
// returns it and as a trace lists it.
type AuditEntry struct {
	Index  int64        `json:"index"`
	Record audit.Record `json:"record"`
}

// AuditTraceNode is an [audit.TraceNode] as GET /v1/audit/trace/{id}
// returns it.
type AuditTraceNode struct {
	Txn      string            `json:"txn"`
	Parent   string            `json:"parent,omitempty"`
	Agent    string            `json:"agent,omitempty"`
	Task     string            `json:"task,omitempty"`
	Records  []AuditEntry      `json:"records"`
	Children []*AuditTraceNode `json:"children,omitempty"`
}

// AuditTraceResult is the body of GET /v1/audit/trace/{id}: the tree and
// its text rendering ([audit.TraceNode.Format]).
type AuditTraceResult struct {
	Tree *AuditTraceNode `json:"tree"`
	Text string          `json:"text"`
}

// AuditCheckpointResult is the body of GET /v1/audit/checkpoint.
type AuditCheckpointResult struct {
	// Checkpoint is the signed checkpoint note.
	Checkpoint string `json:"checkpoint"`
	// VerifierKey is the note verifier key that checks it.
	VerifierKey string `json:"verifier_key"`
}

// ProofResult is the body of the proof endpoints: the proof's hashes in
// base64 (tlog.Hash text), in proof order.
type ProofResult struct {
	Hashes []string `json:"hashes"`
}

// PolicyReloadResult is the body of POST /v1/policy/reload.
type PolicyReloadResult struct {
	Version string `json:"version"`
}

func toAuditEntries(es []audit.Entry) []AuditEntry {
	out := make([]AuditEntry, len(es))
	for i, e := range es {
		out[i] = AuditEntry{Index: e.Index, Record: e.Record}
	}
	return out
}

func fromAuditEntries(es []AuditEntry) []audit.Entry {
	out := make([]audit.Entry, len(es))
	for i, e := range es {
		out[i] = audit.Entry{Index: e.Index, Record: e.Record}
	}
	return out
}

func toTraceNode(n *audit.TraceNode) *AuditTraceNode {
	if n == nil {
		return nil
	}
	w := &AuditTraceNode{Txn: n.Txn, Parent: n.Parent, Agent: n.Agent, Task: n.Task, Records: toAuditEntries(n.Records)}
	for _, c := range n.Children {
		w.Children = append(w.Children, toTraceNode(c))
	}
	return w
}

// TraceNode converts the node back to an [audit.TraceNode].
func (n *AuditTraceNode) TraceNode() *audit.TraceNode {
	if n == nil {
		return nil
	}
	t := &audit.TraceNode{Txn: n.Txn, Parent: n.Parent, Agent: n.Agent, Task: n.Task, Records: fromAuditEntries(n.Records)}
	for _, c := range n.Children {
		t.Children = append(t.Children, c.TraceNode())
	}
	return t
}

// registerAudit adds the /v1/audit and /v1/policy endpoints to mux. When b
// does not implement AuditBackend they answer 501.
func registerAudit(mux *http.ServeMux, b Backend) {
	ab, _ := b.(AuditBackend)
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request, AuditBackend)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if ab == nil {
				writeError(w, http.StatusNotImplemented, ErrNotSupported.Error())
				return
			}
			h(w, r, ab)
		})
	}
	handle("POST /v1/audit/verify", serveAuditVerify)
	handle("GET /v1/audit/records", serveAuditRecords)
	handle("GET /v1/audit/export", serveAuditExport)
	handle("GET /v1/audit/trace/{id}", serveAuditTrace)
	handle("POST /v1/audit/check", serveAuditCheck)
	handle("GET /v1/audit/checkpoint", serveAuditCheckpoint)
	handle("GET /v1/audit/proof/inclusion", serveInclusionProof)
	handle("GET /v1/audit/proof/consistency", serveConsistencyProof)
	handle("POST /v1/policy/reload", servePolicyReload)
	handle("POST /v1/policy/decide", servePolicyDecide)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// queryInt reads the integer query parameter name. A missing parameter
// gives def, or an error when required. Values below min are errors.
func queryInt(r *http.Request, name string, def int64, required bool, min int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		if required {
			return 0, fmt.Errorf("query parameter %s is required", name)
		}
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("query parameter %s: %q is not an integer", name, s)
	}
	if v < min {
		return 0, fmt.Errorf("query parameter %s must be at least %d, got %d", name, min, v)
	}
	return v, nil
}

func serveAuditVerify(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxVerifyBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read the request: "+err.Error())
		return
	}
	if len(data) > maxVerifyBody {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request larger than %d bytes", maxVerifyBody))
		return
	}
	var res AuditVerifyResult
	if len(bytes.TrimSpace(data)) == 0 {
		res, err = ab.AuditVerify(r.Context())
	} else {
		var req AuditVerifyRequest
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		derr := dec.Decode(&req)
		if derr == nil && dec.More() {
			derr = errors.New("data after the request object")
		}
		if derr != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid verification request: %v", derr))
			return
		}
		pv, ok := ab.(AuditPinnedVerifier)
		if !ok {
			writeError(w, http.StatusNotImplemented, "the host does not verify with a pinned key or against a kept checkpoint")
			return
		}
		res, err = pv.AuditVerifyPinned(r.Context(), req)
	}
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrBadVerifyRequest) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func serveAuditRecords(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	from, err := queryInt(r, "from", 0, false, -MaxRecordsLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := queryInt(r, "limit", DefaultRecordsLimit, false, 1)
	if err == nil && limit > MaxRecordsLimit {
		err = fmt.Errorf("query parameter limit must be at most %d, got %d", MaxRecordsLimit, limit)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	es, err := ab.AuditRead(r.Context(), from, int(limit))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, toAuditEntries(es))
}

// exportWriter sends the response header on the first write, so that an
// export that fails before writing anything can still answer with an
// error status.
type exportWriter struct {
	w       http.ResponseWriter
	started bool
}

func (e *exportWriter) Write(p []byte) (int, error) {
	if !e.started {
		e.w.Header().Set("Content-Type", "application/x-ndjson")
		e.w.WriteHeader(http.StatusOK)
		e.started = true
	}
	return e.w.Write(p)
}

func serveAuditExport(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	from, err := queryInt(r, "from", 0, false, 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ew := &exportWriter{w: w}
	if _, err := ab.AuditExport(r.Context(), ew, from); err != nil {
		if !ew.started {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		// Part of the export is sent: break the connection so that the
		// client sees a truncated stream rather than a complete one.
		panic(http.ErrAbortHandler)
	}
	if !ew.started {
		// Nothing to export: an empty stream.
		_, _ = ew.Write(nil)
	}
}

func serveAuditTrace(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	id := r.PathValue("id")
	n, err := ab.AuditTrace(r.Context(), id)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, audit.ErrNotFound) {
			code = http.StatusNotFound
		}
		writeError(w, code, err.Error())
		return
	}
	var text bytes.Buffer
	if err := n.Format(&text); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, AuditTraceResult{Tree: toTraceNode(n), Text: text.String()})
}

func serveAuditCheck(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRulesBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read rules: "+err.Error())
		return
	}
	if len(data) > maxRulesBody {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("rules larger than %d bytes", maxRulesBody))
		return
	}
	rules, err := audit.ParseRules(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	vs, err := ab.AuditCheck(r.Context(), rules)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if vs == nil {
		vs = []audit.Violation{}
	}
	writeJSON(w, http.StatusOK, vs)
}

func serveAuditCheckpoint(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	cp, vkey, err := ab.AuditCheckpoint(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, AuditCheckpointResult{Checkpoint: string(cp), VerifierKey: vkey})
}

func writeProof(w http.ResponseWriter, hashes []string, err error) {
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if hashes == nil {
		hashes = []string{}
	}
	writeJSON(w, http.StatusOK, ProofResult{Hashes: hashes})
}

func serveInclusionProof(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	index, err := queryInt(r, "index", 0, true, 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	size, err := queryInt(r, "size", 0, true, 1)
	if err == nil && index >= size {
		err = fmt.Errorf("query parameter index (%d) must be less than size (%d)", index, size)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	hashes, err := ab.AuditInclusionProof(r.Context(), index, size)
	writeProof(w, hashes, err)
}

func serveConsistencyProof(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	oldSize, err := queryInt(r, "old", 0, true, 1)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	newSize, err := queryInt(r, "new", 0, true, 1)
	if err == nil && newSize < oldSize {
		err = fmt.Errorf("query parameter new (%d) must be at least old (%d)", newSize, oldSize)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	hashes, err := ab.AuditConsistencyProof(r.Context(), oldSize, newSize)
	writeProof(w, hashes, err)
}

func servePolicyReload(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	v, err := ab.PolicyReload(r.Context())
	if err != nil {
		// The policies could not be loaded; the previous set stays.
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, PolicyReloadResult{Version: v})
}

func servePolicyDecide(w http.ResponseWriter, r *http.Request, ab AuditBackend) {
	var req policy.Request
	dec := json.NewDecoder(io.LimitReader(r.Body, maxDecideBody))
	dec.DisallowUnknownFields()
	// Numbers stay exact, so that an integral value maps to a Cedar Long
	// as in a cases file.
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid policy request: "+err.Error())
		return
	}
	d, err := ab.PolicyDecide(r.Context(), req)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, policy.ErrInvalidRequest) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// remoteError is an error the admin API answered with: its text is the
// host's message, and it wraps the error the status stands for, if any.
type remoteError struct {
	msg string
	is  error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.is }

// responseError turns a non-200 response into an error. notFound is what a
// 404 means for the endpoint (nil if nothing in particular).
func responseError(resp *http.Response, notFound error) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	msg := ""
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	} else {
		msg = fmt.Sprintf("localapi: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var is error
	switch resp.StatusCode {
	case http.StatusNotImplemented:
		is = ErrNotSupported
	case http.StatusNotFound:
		is = notFound
	case http.StatusForbidden:
		is = ErrRefused
	}
	return &remoteError{msg: msg, is: is}
}

// call sends a request to the admin API and decodes a 200 response into
// out (unless out is nil). Without a timeout only ctx bounds the call, for
// operations that read the whole log.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any, timeout bool, notFound error) error {
	resp, err := c.send(ctx, method, path, body, timeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(resp, notFound)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("localapi: decode %s: %w", path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, body []byte, timeout bool) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agenthost"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.http
	if !timeout {
		cp := *c.http
		cp.Timeout = 0
		hc = &cp
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("localapi: %w", err)
	}
	return resp, nil
}

// AuditVerify has the host checkpoint its audit log and verify it.
func (c *Client) AuditVerify(ctx context.Context) (AuditVerifyResult, error) {
	var res AuditVerifyResult
	err := c.call(ctx, http.MethodPost, "/v1/audit/verify", nil, &res, false, nil)
	return res, err
}

// AuditVerifyPinned has the host checkpoint its audit log and verify it
// with req's verifier key (not the host's own) and against req's kept
// checkpoint. A host that cannot is an error wrapping ErrNotSupported.
func (c *Client) AuditVerifyPinned(ctx context.Context, req AuditVerifyRequest) (AuditVerifyResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return AuditVerifyResult{}, fmt.Errorf("localapi: encode verification request: %w", err)
	}
	var res AuditVerifyResult
	err = c.call(ctx, http.MethodPost, "/v1/audit/verify", body, &res, false, nil)
	return res, err
}

// AuditRecords returns up to limit records from index from on; from < 0
// means the last -from records. A limit of 0 means the server's default.
func (c *Client) AuditRecords(ctx context.Context, from int64, limit int) ([]audit.Entry, error) {
	q := url.Values{"from": {strconv.FormatInt(from, 10)}}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var es []AuditEntry
	if err := c.call(ctx, http.MethodGet, "/v1/audit/records?"+q.Encode(), nil, &es, true, nil); err != nil {
		return nil, err
	}
	return fromAuditEntries(es), nil
}

// AuditExport writes the records from index from on to w as JSON lines,
// each exactly as stored and hashed, and returns how many it wrote. An
// export the host could not finish is an error.
func (c *Client) AuditExport(ctx context.Context, w io.Writer, from int64) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/audit/export?from="+strconv.FormatInt(from, 10), nil, false)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, responseError(resp, nil)
	}
	br := bufio.NewReader(resp.Body)
	var n int64
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				return n, fmt.Errorf("localapi: export: the stream ended inside record %d", from+n)
			}
			if _, werr := w.Write(line); werr != nil {
				return n, werr
			}
			n++
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("localapi: export broke off after %d records: %w", n, err)
		}
	}
}

// AuditTrace returns the execution chain of transaction or task id, as a
// tree and as text. An unknown id is an error wrapping audit.ErrNotFound.
func (c *Client) AuditTrace(ctx context.Context, id string) (*audit.TraceNode, string, error) {
	var res AuditTraceResult
	if err := c.call(ctx, http.MethodGet, "/v1/audit/trace/"+url.PathEscape(id), nil, &res, false, audit.ErrNotFound); err != nil {
		return nil, "", err
	}
	return res.Tree.TraceNode(), res.Text, nil
}

// AuditCheck replays the host's audit log against rules, given in the
// format of audit.ParseRules, and returns the violations.
func (c *Client) AuditCheck(ctx context.Context, rulesJSON []byte) ([]audit.Violation, error) {
	if rulesJSON == nil {
		rulesJSON = []byte{}
	}
	var vs []audit.Violation
	if err := c.call(ctx, http.MethodPost, "/v1/audit/check", rulesJSON, &vs, false, nil); err != nil {
		return nil, err
	}
	return vs, nil
}

// AuditCheckpoint returns the host's latest signed checkpoint note and the
// verifier key that checks it.
func (c *Client) AuditCheckpoint(ctx context.Context) (checkpoint []byte, verifierKey string, err error) {
	var res AuditCheckpointResult
	if err := c.call(ctx, http.MethodGet, "/v1/audit/checkpoint", nil, &res, true, nil); err != nil {
		return nil, "", err
	}
	return []byte(res.Checkpoint), res.VerifierKey, nil
}

// AuditInclusionProof returns the proof that record index is in the tree
// of the first treeSize records (base64 hashes).
func (c *Client) AuditInclusionProof(ctx context.Context, index, treeSize int64) ([]string, error) {
	q := url.Values{"index": {strconv.FormatInt(index, 10)}, "size": {strconv.FormatInt(treeSize, 10)}}
	var res ProofResult
	if err := c.call(ctx, http.MethodGet, "/v1/audit/proof/inclusion?"+q.Encode(), nil, &res, true, nil); err != nil {
		return nil, err
	}
	return res.Hashes, nil
}

// AuditConsistencyProof returns the proof that the tree of newSize records
// extends the tree of oldSize records (base64 hashes).
func (c *Client) AuditConsistencyProof(ctx context.Context, oldSize, newSize int64) ([]string, error) {
	q := url.Values{"old": {strconv.FormatInt(oldSize, 10)}, "new": {strconv.FormatInt(newSize, 10)}}
	var res ProofResult
	if err := c.call(ctx, http.MethodGet, "/v1/audit/proof/consistency?"+q.Encode(), nil, &res, true, nil); err != nil {
		return nil, err
	}
	return res.Hashes, nil
}

// PolicyReload has the host re-read its policy files and returns the
// version in force. On error (such as a policy that does not parse, named
// by file and line) the previous set stays in force.
func (c *Client) PolicyReload(ctx context.Context) (string, error) {
	var res PolicyReloadResult
	if err := c.call(ctx, http.MethodPost, "/v1/policy/reload", []byte{}, &res, true, nil); err != nil {
		return "", err
	}
	return res.Version, nil
}

// PolicyDecide evaluates r against the host's policies in force.
func (c *Client) PolicyDecide(ctx context.Context, r policy.Request) (policy.Decision, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return policy.Decision{}, fmt.Errorf("localapi: encode policy request: %w", err)
	}
	var d policy.Decision
	err = c.call(ctx, http.MethodPost, "/v1/policy/decide", body, &d, true, nil)
	return d, err
}
