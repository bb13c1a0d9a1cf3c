package latchkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
)

// KeyType says how a key proves itself. A bearer key sends its secret on
// every call; a signing key never sends (and latchkey never holds) its
// private half: each call carries an RFC 9421 signature made with it.
type KeyType string

const (
	KeyTypeBearer  KeyType = "bearer"
	KeyTypeSigning KeyType = "signing"
)

// KeyTypes lists every key type, in the order the OpenAPI document does.
func KeyTypes() []KeyType { return []KeyType{KeyTypeBearer, KeyTypeSigning} }

// Signature algorithms a signing key may use, named as in the IANA HTTP
// Signature Algorithms registry (RFC 9421 section 6.2.2).
const (
	AlgEd25519      = "ed25519"
	AlgECDSAP256SHA = "ecdsa-p256-sha256"
)

// MaxPublicKeyLen bounds a public key in PEM form; an Ed25519 key takes
// 113 bytes and a P-256 key 178.
const MaxPublicKeyLen = 1024

// PublicKey is the public half of a signing key: all latchkey stores of
// it. The private half stays with the client.
type PublicKey struct {
	// Algorithm is the only signature algorithm the key verifies.
	Algorithm string `json:"algorithm"`
	// PEM is the key as a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo).
	PEM string `json:"pem"`
	// Fingerprint is "SHA256:" and the unpadded base64 of the SHA-256 of
	// the key's SubjectPublicKeyInfo, as ssh-keygen -l prints keys.
	Fingerprint string `json:"fingerprint"`

	// Key is the parsed key: ed25519.PublicKey or *ecdsa.PublicKey.
	Key crypto.PublicKey `json:"-"`
}

// ParsePublicKey reads a signing key's public half from PEM
// ("-----BEGIN PUBLIC KEY-----", SubjectPublicKeyInfo, as openssl pkey
// -pubout writes it). It accepts Ed25519 and ECDSA P-256 keys. A private
// key is refused with EINVALID and a message that says so (it must never be
// sent), as is anything else that is not one of those public keys.
func ParsePublicKey(s string) (*PublicKey, error) {
	if len(s) > MaxPublicKeyLen {
		return nil, Errorf(EINVALID, "public_key is longer than %d bytes; expected a PEM PUBLIC KEY block of an Ed25519 or ECDSA P-256 key", MaxPublicKeyLen)
	}
	b, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if b == nil {
		return nil, Errorf(EINVALID, "public_key is not PEM; expected a block that starts with -----BEGIN PUBLIC KEY----- (openssl pkey -pubout)")
	}
	if strings.Contains(b.Type, "PRIVATE") {
		return nil, Errorf(EINVALID, "public_key holds a private key; send only the public half (openssl pkey -pubout), and treat this private key as exposed")
	}
	if b.Type != "PUBLIC KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, Errorf(EINVALID, "public_key must be exactly one PEM PUBLIC KEY block, not %q", b.Type)
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, Errorf(EINVALID, "public_key is not a valid SubjectPublicKeyInfo")
	}
	return NewPublicKey(k)
}

// NewPublicKey describes k, an ed25519.PublicKey or an *ecdsa.PublicKey on
// P-256. Other keys are refused with EINVALID.
func NewPublicKey(k crypto.PublicKey) (*PublicKey, error) {
	var alg string
	switch k := k.(type) {
	case ed25519.PublicKey:
		alg = AlgEd25519
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, Errorf(EINVALID, "public_key is an ECDSA key on %s; only P-256 is accepted", k.Curve.Params().Name)
		}
		alg = AlgECDSAP256SHA
	default:
		return nil, Errorf(EINVALID, "public_key must be an Ed25519 or ECDSA P-256 key, not %T", k)
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, Errorf(EINVALID, "public_key cannot be encoded")
	}
	sum := sha256.Sum256(der)
	return &PublicKey{
		Algorithm:   alg,
		PEM:         string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		Fingerprint: "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]),
		Key:         k,
	}, nil
}

// SigningDigest is what a signing key stores where a bearer key stores
// the digest of its secret: SHA-256 of a string that no secret can be
// (keyformat.ValidSecret refuses it), unique per key ID. No presented
// secret ever finds a signing key.
func SigningDigest(id string) [32]byte { return sha256.Sum256([]byte("latchkey signing key " + id)) }
