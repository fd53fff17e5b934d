package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go"
)

// Cedar entity types of the model (see the package documentation).
const (
	typeAgent    cedar.EntityType = "Agent"
	typeTool     cedar.EntityType = "Tool"
	typeServer   cedar.EntityType = "Server"
	typeModel    cedar.EntityType = "Model"
	typeToolList cedar.EntityType = "ToolList"
	typeAction   cedar.EntityType = "Action"
)

// Context keys the engine always sets. Caller attributes may not reuse them.
var reservedContext = map[string]bool{
	"subject": true, "scopes": true, "attestation": true, "binary_sha256": true, "risk": true,
	"risk_score": true, "args_sha256": true, "chain": true, "chain_depth": true,
}

// Bounds on caller-supplied context values: nesting depth, and the number
// of values (each element of a list or map counts) in one request.
const (
	maxValueDepth = 16
	maxValueCount = 1024
)

// entities is the per-request entity store: the principal and the resource
// (with their parents), found by a linear scan, which beats a map for two
// entries.
type entities struct {
	n  int
	es [2]cedar.Entity
}

// Get implements cedar.EntityGetter.
func (s *entities) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	for i := range s.n {
		if s.es[i].UID == uid {
			return s.es[i], true
		}
	}
	return cedar.Entity{}, false
}

func (s *entities) add(e cedar.Entity) {
	s.es[s.n] = e
	s.n++
}

var (
	emptyRecord = cedar.NewRecord(nil)
	emptySet    = cedar.NewSet()
)

// Bounds of each entity cache: past maxCachedEntities entries, or for keys
// longer than maxCachedKey bytes, entities are built per request.
const (
	maxCachedEntities = 4096
	maxCachedKey      = 512
)

// entityCache keeps the principal and resource entities already built:
// they depend only on their key, and building their attribute records is a
// large part of the cost of a decision.
type entityCache struct {
	m sync.Map // cacheKey → cedar.Entity
	n atomic.Int64
}

// cacheKey is a pair of strings; a struct, not a joined string, so that
// no two pairs share a key.
type cacheKey struct{ a, b string }

func (c *entityCache) load(key cacheKey) (cedar.Entity, bool) {
	v, ok := c.m.Load(key)
	if !ok {
		return cedar.Entity{}, false
	}
	return v.(cedar.Entity), true
}

func (c *entityCache) store(key cacheKey, e cedar.Entity) {
	if len(key.a)+len(key.b) <= maxCachedKey && c.n.Load() < maxCachedEntities {
		if _, loaded := c.m.LoadOrStore(key, e); !loaded {
			c.n.Add(1)
		}
	}
}

// build translates a Request into a Cedar request and its entities.
func (e *Engine) build(r Request) (cedar.Request, *entities, error) {
	var zero cedar.Request
	if r.Principal.Name == "" {
		return zero, nil, fmt.Errorf("%w: principal name is empty", ErrInvalidRequest)
	}
	if !ValidAction(r.Action) {
		return zero, nil, fmt.Errorf("%w: unknown action %q", ErrInvalidRequest, r.Action)
	}
	score, err := riskScore(r.Risk)
	if err != nil {
		return zero, nil, err
	}
	ents := &entities{}
	pkey := cacheKey{r.Principal.Name, r.Principal.SPIFFEID}
	pe, ok := e.principals.load(pkey)
	if !ok {
		pe = principalEntity(r.Principal)
		e.principals.store(pkey, pe)
	}
	ents.add(pe)
	rkey := cacheKey{r.Action, r.Resource}
	res, ok := e.resources.load(rkey)
	if !ok {
		if res, err = resourceEntity(r.Action, r.Resource); err != nil {
			return zero, nil, err
		}
		e.resources.store(rkey, res)
	}
	ents.add(res)

	ctxMap := make(cedar.RecordMap, len(reservedContext)+len(r.Context))
	budget := maxValueCount
	for k, v := range r.Context {
		if reservedContext[k] {
			return zero, nil, fmt.Errorf("%w: context attribute %q is reserved", ErrInvalidRequest, k)
		}
		cv, err := toValue(v, 0, &budget)
		if err != nil {
			return zero, nil, fmt.Errorf("%w: context attribute %q: %v", ErrInvalidRequest, k, err)
		}
		ctxMap[cedar.String(k)] = cv
	}
	ctxMap["subject"] = cedar.String(r.Subject)
	ctxMap["scopes"] = stringSet(r.Scopes)
	ctxMap["attestation"] = cedar.String(r.Attestation)
	ctxMap["binary_sha256"] = cedar.String(r.BinarySHA256)
	ctxMap["risk"] = cedar.String(r.Risk)
	ctxMap["risk_score"] = cedar.Long(score)
	ctxMap["args_sha256"] = cedar.String(r.ArgsSHA256)
	ctxMap["chain"] = stringSet(r.Chain)
	ctxMap["chain_depth"] = cedar.Long(len(r.Chain))

	return cedar.Request{
		Principal: pe.UID,
		Action:    cedar.NewEntityUID(typeAction, cedar.String(r.Action)),
		Resource:  res.UID,
		Context:   cedar.NewRecord(ctxMap),
	}, ents, nil
}

// principalEntity is the entity of the calling agent.
func principalEntity(p Principal) cedar.Entity {
	return cedar.Entity{
		UID: cedar.NewEntityUID(typeAgent, cedar.String(p.Name)),
		Attributes: cedar.NewRecord(cedar.RecordMap{
			"name":      cedar.String(p.Name),
			"spiffe_id": cedar.String(p.SPIFFEID),
		}),
	}
}

// resourceEntity types the resource by the action.
func resourceEntity(action, resource string) (cedar.Entity, error) {
	bad := func(why string) (cedar.Entity, error) {
		return cedar.Entity{}, fmt.Errorf("%w: resource %q for %s: %s", ErrInvalidRequest, resource, action, why)
	}
	switch action {
	case ActionCallTool:
		server, tool, ok := strings.Cut(resource, "/")
		if !ok || server == "" || tool == "" {
			return bad(`want "server/tool"`)
		}
		return cedar.Entity{
			UID:     cedar.NewEntityUID(typeTool, cedar.String(resource)),
			Parents: cedar.NewEntityUIDSet(cedar.NewEntityUID(typeServer, cedar.String(server))),
			Attributes: cedar.NewRecord(cedar.RecordMap{
				"server": cedar.String(server),
				"name":   cedar.String(tool),
			}),
		}, nil
	case ActionListTools:
		if resource == "" || strings.Contains(resource, "/") {
			return bad(`want a server name or "*"`)
		}
		e := cedar.Entity{UID: cedar.NewEntityUID(typeToolList, cedar.String(resource)), Attributes: emptyRecord}
		if resource != "*" {
			e.Parents = cedar.NewEntityUIDSet(cedar.NewEntityUID(typeServer, cedar.String(resource)))
		}
		return e, nil
	case ActionComplete:
		alias := strings.TrimPrefix(resource, "model:")
		if alias == "" {
			return bad(`want "model:alias"`)
		}
		return cedar.Entity{UID: cedar.NewEntityUID(typeModel, cedar.String(alias)), Attributes: emptyRecord}, nil
	case ActionCallAgent:
		if resource == "" {
			return bad("want an agent name")
		}
		return cedar.Entity{UID: cedar.NewEntityUID(typeAgent, cedar.String(resource)), Attributes: emptyRecord}, nil
	}
	return bad("unknown action")
}

func stringSet(ss []string) cedar.Set {
	if len(ss) == 0 {
		return emptySet
	}
	vs := make([]cedar.Value, len(ss))
	for i, s := range ss {
		vs[i] = cedar.String(s)
	}
	return cedar.NewSet(vs...)
}

// toValue converts a caller-supplied attribute into a Cedar value.
func toValue(v any, depth int, budget *int) (cedar.Value, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxValueDepth)
	}
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("context holds more than %d values", maxValueCount)
	}
	switch x := v.(type) {
	case string:
		return cedar.String(x), nil
	case bool:
		return cedar.Boolean(x), nil
	case int:
		return cedar.Long(x), nil
	case int8:
		return cedar.Long(x), nil
	case int16:
		return cedar.Long(x), nil
	case int32:
		return cedar.Long(x), nil
	case int64:
		return cedar.Long(x), nil
	case uint8:
		return cedar.Long(x), nil
	case uint16:
		return cedar.Long(x), nil
	case uint32:
		return cedar.Long(x), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d out of range", x)
		}
		return cedar.Long(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d out of range", x)
		}
		return cedar.Long(x), nil
	case float32:
		return floatValue(float64(x))
	case float64:
		return floatValue(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return cedar.Long(i), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s out of range", x)
		}
		return floatValue(f)
	case []string:
		if *budget -= len(x); *budget < 0 {
			return nil, fmt.Errorf("context holds more than %d values", maxValueCount)
		}
		return stringSet(x), nil
	case []any:
		vs := make([]cedar.Value, len(x))
		for i, e := range x {
			cv, err := toValue(e, depth+1, budget)
			if err != nil {
				return nil, err
			}
			vs[i] = cv
		}
		return cedar.NewSet(vs...), nil
	case map[string]any:
		m := make(cedar.RecordMap, len(x))
		for k, e := range x {
			cv, err := toValue(e, depth+1, budget)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			m[cedar.String(k)] = cv
		}
		return cedar.NewRecord(m), nil
	case nil:
		return nil, fmt.Errorf("null is not a Cedar value")
	}
	return nil, fmt.Errorf("unsupported type %T", v)
}

// floatValue maps an integral float to a Long and any other finite float
// to a decimal (four fractional digits).
func floatValue(f float64) (cedar.Value, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %v is not finite", f)
	}
	if f == math.Trunc(f) && f >= -(1<<63) && f < (1<<63) {
		return cedar.Long(int64(f)), nil
	}
	d, err := cedar.NewDecimalFromFloat(f)
	if err != nil {
		return nil, fmt.Errorf("number %v out of decimal range", f)
	}
	return d, nil
}
