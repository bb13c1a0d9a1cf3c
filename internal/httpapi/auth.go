package httpapi

import (
	"context"
	"net/http"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/verify"
)

type actorKey struct{}

// ActorFrom returns the authenticated caller stored in ctx by the admin
// middleware.
func ActorFrom(ctx context.Context) (latchkey.Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(latchkey.Actor)
	return a, ok
}

// Authenticate resolves the request's credential to an admin principal.
// Anything but an Active, unexpired principal key is EUNAUTHORIZED with the
// same message: an application key, an unknown key, a malformed one and an
// inactive one all look alike from outside.
func (s *Server) Authenticate(r *http.Request) (latchkey.Actor, error) {
	cred := CredentialFromRequest(r)
	ip := ClientIP(r, s.TrustedProxies)
	if !cred.Present {
		return latchkey.Actor{}, latchkey.Errorf(latchkey.EUNAUTHORIZED,
			"this endpoint needs an admin access key: send Authorization: Bearer <secret>, Basic <id:secret>, or X-Api-Key")
	}
	res := s.Verifier.Verify(&verify.Request{
		Secret: cred.Secret, AccessKeyID: cred.AccessKeyID, Extra: cred.Extra, IP: ip, UserAgent: r.UserAgent(), Principal: true,
		Surface: latchkey.SurfaceManagement, Path: r.URL.Path,
	})
	if res.Code == latchkey.CodeCredentialAmbiguous {
		return latchkey.Actor{}, latchkey.Errorf(latchkey.EUNAUTHORIZED,
			"more than one credential was sent (Authorization and X-Api-Key, or one of them twice): send exactly one")
	}
	if !res.Valid() {
		return latchkey.Actor{}, latchkey.Errorf(latchkey.EUNAUTHORIZED, "the access key is not valid for the management API")
	}
	e := res.Entry
	return latchkey.Actor{
		Principal: e.Principal(), Account: e.Account, Role: e.Role(), AccessKeyID: e.ID,
		SourceIP: addrString(ip), UserAgent: r.UserAgent(),
	}, nil
}

// admin wraps a management handler: it authenticates the caller and refuses
// verifier principals, which may only verify.
func (s *Server) admin(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		a, err := s.Authenticate(r)
		if err != nil {
			return err
		}
		if a.Role == latchkey.RoleVerifier {
			return latchkey.Errorf(latchkey.EFORBIDDEN, "role verifier may only call /v1/verify")
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	}
}

func actor(r *http.Request) latchkey.Actor {
	a, _ := ActorFrom(r.Context())
	return a
}
