package fetch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// Post sends body with POST to rawURL, with contentType and the extra
// header fields in header (an Authorization header, say), and returns the
// 2xx response with its body (at most the configured MaxBytes, which may
// be empty). It is for notifications the server sends to an endpoint a
// client registered, such as a CIBA ping (OpenID CIBA Core §10.2).
//
// The URL rules and address checks are those of [Fetcher.Get], and the
// whole exchange must finish within the timeout; but no redirect is ever
// followed, even within the origin: a redirected POST would send the body
// and its credentials on to a target the client did not register. A
// redirect answer wraps [ErrRedirect].
func (f *Fetcher) Post(ctx context.Context, rawURL, contentType string, header http.Header, body []byte) (*Response, error) {
	u, err := f.checkURL(rawURL)
	if err != nil {
		f.refused(ctx, rawURL, err)
		return nil, err
	}
	cctx, cancel := context.WithTimeout(context.WithValue(ctx, redirectLimitKey{}, 0), f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	for name, values := range header {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := f.client.Do(req)
	if err != nil {
		err = f.failure(ctx, cctx, http.MethodPost, u, err)
		f.refused(ctx, rawURL, err)
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, maxExcerpt))
		err := &StatusError{Code: resp.StatusCode, Excerpt: excerpt(head)}
		f.refused(ctx, rawURL, err)
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		err = f.failure(ctx, cctx, http.MethodPost, u, err)
		f.refused(ctx, rawURL, err)
		return nil, err
	}
	if int64(len(out)) > f.maxBytes {
		err := fmt.Errorf("%w: body exceeds %d bytes", ErrTooLarge, f.maxBytes)
		f.refused(ctx, rawURL, err)
		return nil, err
	}
	return &Response{URL: u.String(), Status: resp.StatusCode, Header: resp.Header, Body: out}, nil
}
