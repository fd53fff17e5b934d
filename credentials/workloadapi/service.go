package workloadapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"

	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// securityHeader is the metadata every Workload API call must carry with
// the value "true" (SPECS.md §10.6).
const securityHeader = "workload.spiffe.io"

// checkCall applies the checks every call on wl's socket passes before its
// handler runs: the security header (InvalidArgument if absent), then the
// peer decision of the connection's handshake (PermissionDenied). It returns
// the caller's credentials.
func checkCall(ctx context.Context, wl *workload) (Peer, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(securityHeader); len(v) != 1 || v[0] != "true" {
		return Peer{}, status.Error(codes.InvalidArgument, "workloadapi: security header missing from request: metadata \""+securityHeader+": true\" is required")
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Peer{}, status.Error(codes.PermissionDenied, "workloadapi: caller cannot be identified")
	}
	info, ok := p.AuthInfo.(authInfo)
	if !ok || info.workload != wl {
		return Peer{}, status.Error(codes.PermissionDenied, "workloadapi: caller cannot be identified")
	}
	if info.denied != nil {
		return Peer{}, status.Error(codes.PermissionDenied, "workloadapi: "+info.denied.Error())
	}
	return info.peer, nil
}

// service implements the SpiffeWorkloadAPI service for one workload's
// socket: every SVID it hands out names one of that workload's IDs.
type service struct {
	workloadpb.UnimplementedSpiffeWorkloadAPIServer
	s *Server
	w *workload
}

// FetchX509SVID streams the workload's X.509-SVIDs, one per ID with the
// default ID first, with the trust bundle and any federated bundles
// (SPECS.md §10.6): a snapshot at once and after every change.
func (v *service) FetchX509SVID(_ *workloadpb.X509SVIDRequest, ss grpc.ServerStreamingServer[workloadpb.X509SVIDResponse]) error {
	if _, err := checkCall(ss.Context(), v.w); err != nil {
		return err
	}
	return serveStream(v, ss, func() (*workloadpb.X509SVIDResponse, error) {
		v.s.mu.Lock()
		defer v.s.mu.Unlock()
		b := v.s.bundle
		resp := &workloadpb.X509SVIDResponse{FederatedBundles: b.federatedX509()}
		for _, id := range v.w.ids {
			entry := v.w.x509[id]
			if entry == nil {
				continue
			}
			resp.Svids = append(resp.Svids, &workloadpb.X509SVID{
				SpiffeId:    id.String(),
				X509Svid:    entry.certDER,
				X509SvidKey: entry.keyDER,
				Bundle:      b.x509DER,
			})
		}
		if len(resp.Svids) == 0 {
			return nil, status.Error(codes.PermissionDenied, "workloadapi: no identity issued: the authority has no x509-svid for this socket")
		}
		return resp, nil
	})
}

// FetchX509Bundles streams the X.509 authorities of the trust domain and
// of the trust domains it federates with.
func (v *service) FetchX509Bundles(_ *workloadpb.X509BundlesRequest, ss grpc.ServerStreamingServer[workloadpb.X509BundlesResponse]) error {
	if _, err := checkCall(ss.Context(), v.w); err != nil {
		return err
	}
	return serveStream(v, ss, func() (*workloadpb.X509BundlesResponse, error) {
		return &workloadpb.X509BundlesResponse{Bundles: v.currentBundle().x509Bundles()}, nil
	})
}

// FetchJWTBundles streams the JWKS of the jwt-svid keys of the trust
// domain and of the trust domains it federates with.
func (v *service) FetchJWTBundles(_ *workloadpb.JWTBundlesRequest, ss grpc.ServerStreamingServer[workloadpb.JWTBundlesResponse]) error {
	if _, err := checkCall(ss.Context(), v.w); err != nil {
		return err
	}
	return serveStream(v, ss, func() (*workloadpb.JWTBundlesResponse, error) {
		return &workloadpb.JWTBundlesResponse{Bundles: v.currentBundle().jwtBundles()}, nil
	})
}

// FetchWITBundles streams the JWKS of the wit-svid keys of the trust
// domain and of the trust domains it federates with.
func (v *service) FetchWITBundles(_ *workloadpb.WITBundlesRequest, ss grpc.ServerStreamingServer[workloadpb.WITBundlesResponse]) error {
	if _, err := checkCall(ss.Context(), v.w); err != nil {
		return err
	}
	return serveStream(v, ss, func() (*workloadpb.WITBundlesResponse, error) {
		return &workloadpb.WITBundlesResponse{Bundles: v.currentBundle().witBundles()}, nil
	})
}

// FetchWITSVID streams the WIT-SVIDs of the requested spiffe_id, or of all
// the workload's IDs (default first) when none is requested, each with its
// private key as a JWK (SPECS.md §10.4, §10.6). The first WIT-SVID of an
// ID is issued on the first request for it; it is rotated like the
// X.509-SVID.
func (v *service) FetchWITSVID(req *workloadpb.WITSVIDRequest, ss grpc.ServerStreamingServer[workloadpb.WITSVIDResponse]) error {
	ctx := ss.Context()
	caller, err := checkCall(ctx, v.w)
	if err != nil {
		return err
	}
	ids, err := v.requestedIDs(req.GetSpiffeId())
	if err != nil {
		return err
	}
	if err := v.s.ensureWIT(ctx, v.w, ids, &caller); err != nil {
		if errors.Is(err, ErrNoRegistrationEntry) {
			return status.Error(codes.PermissionDenied, "workloadapi: no identity issued: the authority has no wit-svid for this socket")
		}
		v.s.log.ErrorContext(ctx, "wit-svid issuance failed", slog.String(logKeyWorkload, v.w.id.String()), slog.String(logKeyError, err.Error()))
		return status.Error(codes.Unavailable, "workloadapi: could not issue a wit-svid")
	}
	return serveStream(v, ss, func() (*workloadpb.WITSVIDResponse, error) {
		v.s.mu.Lock()
		defer v.s.mu.Unlock()
		resp := &workloadpb.WITSVIDResponse{}
		for _, id := range ids {
			entry := v.w.wit[id]
			if entry == nil {
				continue
			}
			resp.Svids = append(resp.Svids, &workloadpb.WITSVID{
				SpiffeId:   id.String(),
				WitSvid:    entry.token,
				WitSvidKey: entry.keyJWK,
			})
		}
		if len(resp.Svids) == 0 {
			return nil, status.Error(codes.PermissionDenied, "workloadapi: no identity issued: the authority has no wit-svid for this socket")
		}
		return resp, nil
	})
}

// FetchJWTSVID issues a JWT-SVID (SPECS.md §10.3) for the requested
// audience and the requested spiffe_id, or one for each of the workload's
// IDs (default first) when none is requested.
func (v *service) FetchJWTSVID(ctx context.Context, req *workloadpb.JWTSVIDRequest) (*workloadpb.JWTSVIDResponse, error) {
	caller, err := checkCall(ctx, v.w)
	if err != nil {
		return nil, err
	}
	if len(req.GetAudience()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "workloadapi: audience is required")
	}
	for _, aud := range req.GetAudience() {
		if aud == "" {
			return nil, status.Error(codes.InvalidArgument, "workloadapi: audience is required: an audience value is empty")
		}
	}
	ids, err := v.requestedIDs(req.GetSpiffeId())
	if err != nil {
		return nil, err
	}
	resp := &workloadpb.JWTSVIDResponse{}
	for _, id := range ids {
		token, expiresAt, err := v.s.auth.NewJWTSVID(ctx, id, req.GetAudience())
		if errors.Is(err, ErrNoRegistrationEntry) {
			return nil, status.Errorf(codes.PermissionDenied, "workloadapi: no identity issued for %s", id)
		}
		if err != nil {
			v.s.log.ErrorContext(ctx, "jwt-svid issuance failed", slog.String(logKeyWorkload, id.String()), slog.String(logKeyError, err.Error()))
			return nil, status.Error(codes.Unavailable, "workloadapi: could not issue a jwt-svid")
		}
		v.s.issued(ctx, IssueEvent{Workload: id, Kind: KindJWTSVID, Peer: &caller, ExpiresAt: expiresAt})
		resp.Svids = append(resp.Svids, &workloadpb.JWTSVID{SpiffeId: id.String(), Svid: token})
	}
	return resp, nil
}

// ValidateJWTSVID validates a JWT-SVID for an audience with the authority
// (SPECS.md §10.3) and returns its subject and claims.
func (v *service) ValidateJWTSVID(ctx context.Context, req *workloadpb.ValidateJWTSVIDRequest) (*workloadpb.ValidateJWTSVIDResponse, error) {
	if _, err := checkCall(ctx, v.w); err != nil {
		return nil, err
	}
	if req.GetAudience() == "" {
		return nil, status.Error(codes.InvalidArgument, "workloadapi: audience is required")
	}
	if req.GetSvid() == "" {
		return nil, status.Error(codes.InvalidArgument, "workloadapi: svid is required")
	}
	id, claims, err := v.s.auth.ValidateJWTSVID(ctx, req.GetSvid(), req.GetAudience())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "workloadapi: invalid jwt-svid: "+err.Error())
	}
	pbClaims, err := claimsStruct(claims)
	if err != nil {
		v.s.log.ErrorContext(ctx, "jwt-svid claims cannot be encoded", slog.String(logKeyError, err.Error()))
		return nil, status.Error(codes.Internal, "workloadapi: claims of the jwt-svid cannot be encoded")
	}
	return &workloadpb.ValidateJWTSVIDResponse{SpiffeId: id.String(), Claims: pbClaims}, nil
}

// claimsStruct converts JWT claims to a protobuf Struct through their JSON
// form, which is what they were decoded from.
func claimsStruct(claims map[string]any) (*structpb.Struct, error) {
	if claims == nil {
		return &structpb.Struct{}, nil
	}
	raw, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	out := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, out); err != nil {
		return nil, err
	}
	return out, nil
}

// requestedIDs returns the IDs a request's spiffe_id asks for: all the
// workload's IDs (default first) when it is empty (the Workload API's "all
// identities the workload is entitled to"), or the one named, which must
// be among them; a caller may ask only for the identities of its socket.
func (v *service) requestedIDs(requested string) ([]spiffeid.ID, error) {
	if requested == "" {
		return v.w.ids, nil
	}
	id, err := spiffeid.FromString(requested)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "workloadapi: invalid spiffe_id: "+err.Error())
	}
	if !v.w.serves(id) {
		served := make([]string, len(v.w.ids))
		for i, s := range v.w.ids {
			served[i] = s.String()
		}
		return nil, status.Errorf(codes.PermissionDenied, "workloadapi: this socket serves %s, not %s", strings.Join(served, ", "), id)
	}
	return []spiffeid.ID{id}, nil
}

func (v *service) currentBundle() *bundleSnapshot {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	return v.s.bundle
}

// serveStream sends the snapshot build returns at once and again whenever
// it differs after a change, until the client goes away, the workload is
// removed or the server stops. Every message is a full snapshot (SPECS.md
// §10.6).
func serveStream[T any, PT interface {
	*T
	proto.Message
}](v *service, ss grpc.ServerStreamingServer[T], build func() (PT, error)) error {
	ctx := ss.Context()
	var last PT
	sent := false
	for {
		v.s.mu.Lock()
		changed := v.s.changed
		v.s.mu.Unlock()

		msg, err := build()
		if err != nil {
			return err
		}
		if !sent || !proto.Equal(last, msg) {
			if err := ss.Send((*T)(msg)); err != nil {
				return err
			}
			last, sent = msg, true
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-v.w.done:
			return status.Error(codes.Unavailable, "workloadapi: workload socket closed")
		case <-changed:
		}
	}
}
