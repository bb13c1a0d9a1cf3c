package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/credfile"
	"github.com/spf13/cobra"
)

type rotateOptions struct {
	id       string
	profile  string
	credsAt  string
	quiet    time.Duration
	validate time.Duration
	poll     time.Duration
	yes      bool

	serverSide bool
	expiresIn  string
	hardLimit  string
}

func (s *state) newRotateAccessKeyCmd() *cobra.Command {
	var o rotateOptions
	cmd := &cobra.Command{
		Use:   "rotate-access-key --access-key-id OLD [--save-to-profile PROFILE]",
		Short: "Replace an application's access key in five checked steps",
		Long: `Replace an application's access key without breaking any caller, in the five
steps of a safe rotation, each shown as it happens:

  1. Create the second key. If the application already has two keys and the
     other one is Inactive, say which one to delete first, and stop.
  2. Hand the new key over: write it to --save-to-profile (the profile the
     application's instances read, which holds the old key or nothing yet;
     the old key is kept as PROFILE-previous-N), or print it once. Then watch both keys'
     last use, live, and move on once the old key has not been used for
     --quiet-period (press Enter or type skip to move on sooner).
  3. Deactivate the old key (it can still be made Active again).
  4. Validate for --validate-period: if anything tries the old key, stop,
     show who (source IP, user agent), and offer to reactivate it.
  5. Delete the old key, once you confirm (or with --yes).

Interrupted at any step (Ctrl-C, a lost connection), run the same command
again: it looks at the keys and picks up where they stand (the second key
exists: step 2; the old key is Inactive: step 4). --yes answers every
question with its safe answer for scripts: reactivate a key still in use,
delete the old key once validated.

SERVER-SIDE ROLL
  With --server-side the command makes one call (POST
  /v1/access-keys/{id}/roll) and returns: the server creates the new key
  (saved to --save-to-profile or printed once) and, from
  --old-key-expires-in on, deactivates the old key as soon as it has gone
  --quiet-period without a valid call. While the old key is still in use it
  waits and sends the rotation.stalled webhook once; with --hard-limit it
  deactivates the old key at that time anyway. Without --old-key-expires-in
  the old key stays until someone deactivates it. Deleting the Inactive old
  key follows the account's policy (delete_inactive_after).

Exit status: 0 when the rotation completed (or you chose to keep the old key
Inactive), 1 when it stopped (old key reactivated, an error, interrupted).

JSON OUTPUT
  The steps go to standard error. Standard output gets the new key, as
  create-access-key prints it, if it is not saved to a profile, then one
  summary object:
  {"application", "old_access_key_id", "new_access_key_id",
   "outcome": "completed" | "old_key_kept" | "reactivated" | "stopped",
   "old_key_status": "Deleted" | "Inactive" | "Active",
   "saved_to_profile", "credentials_file"}

EXAMPLES
  # The billing job reads profile "billing" of /etc/billing/credentials
  latchkey rotate-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 \
      --save-to-profile billing --credentials-file /etc/billing/credentials

  # Shorter waits, no questions (CI)
  latchkey rotate-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --save-to-profile billing \
      --quiet-period 5m --validate-period 10m --yes

  # Let the server finish it: the old key goes once quiet after 24h, by 72h at the latest
  latchkey rotate-access-key --access-key-id LKIAEXAMPLEEXAMPLE23 --save-to-profile billing \
      --server-side --old-key-expires-in 24h --hard-limit 72h`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.runRotate(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.id, "access-key-id", "", "the access key to replace (required)")
	f.StringVar(&o.profile, "save-to-profile", "", "write the new key to this credentials profile (one that holds the old key, or a new one) instead of printing it")
	f.StringVar(&o.credsAt, "credentials-file", "", "credentials file for --save-to-profile (default ~/.latchkey/credentials, env "+EnvCredentialsFile+")")
	f.DurationVar(&o.quiet, "quiet-period", 15*time.Minute, "step 2: move on once the old key has not been used for this long")
	f.DurationVar(&o.validate, "validate-period", 15*time.Minute, "step 4: how long to watch for calls with the deactivated key")
	f.BoolVarP(&o.yes, "yes", "y", false, "answer every question (reactivate a key still in use; delete the old key)")
	f.DurationVar(&o.poll, "poll-interval", 2*time.Second, "how often to read the keys' last use")
	_ = f.MarkHidden("poll-interval")
	f.BoolVar(&o.serverSide, "server-side", false, "roll on the server in one call and return; the server retires the old key (see SERVER-SIDE ROLL)")
	f.StringVar(&o.expiresIn, "old-key-expires-in", "", "with --server-side: how long the old key may stay, such as 24h or 7d (default: until deactivated)")
	f.StringVar(&o.hardLimit, "hard-limit", "", "with --server-side: deactivate the old key this long after the roll even if still in use, such as 72h")
	return cmd
}

// runServerSide rolls the key with one call and leaves the rest to the
// server.
func (s *state) runServerSide(cmd *cobra.Command, o rotateOptions, p *printer, cl *client.Client) error {
	var in latchkey.Roll
	for _, f := range []struct {
		flag, v string
		dst     **latchkey.Duration
	}{{"old-key-expires-in", o.expiresIn, &in.OldKeyExpiresIn}, {"hard-limit", o.hardLimit, &in.HardLimit}} {
		if f.v == "" {
			continue
		}
		d, err := latchkey.ParseDuration(f.flag, f.v)
		if err != nil || d.Off() {
			return UsageErrorf("--%s %q: expected a duration such as 24h or 7d", f.flag, f.v)
		}
		*f.dst = &d
	}
	if cmd.Flags().Changed("quiet-period") {
		q := latchkey.Duration(o.quiet.Truncate(time.Second))
		if q.D() < time.Second {
			return UsageErrorf("--quiet-period %s: expected at least 1s with --server-side", o.quiet)
		}
		in.QuietPeriod = &q
	}
	if in.HardLimit != nil && in.OldKeyExpiresIn == nil {
		return UsageErrorf("--hard-limit needs --old-key-expires-in")
	}
	if in.HardLimit != nil && *in.HardLimit < *in.OldKeyExpiresIn {
		return UsageErrorf("--hard-limit %s is shorter than --old-key-expires-in %s", in.HardLimit, in.OldKeyExpiresIn)
	}
	if o.profile != "" {
		if err := s.checkSaveTarget(o.credsAt, o.profile); err != nil {
			return err
		}
	}
	out, err := cl.RollAccessKey(cmd.Context(), o.id, in)
	if err != nil {
		return err
	}
	k, r := out.AccessKey, out.Rotation
	if o.profile != "" {
		if err := s.saveKey(p.info, p.err, o.credsAt, o.profile, k.ID, k.SecretAccessKey); err != nil {
			return fmt.Errorf("%w; access key %s was created but its secret could not be saved: delete it with 'latchkey delete-access-key --access-key-id %s --force' and try again", err, k.ID, k.ID)
		}
	}
	if p.format == formatJSON {
		if o.profile != "" {
			return p.JSON(struct {
				AccessKey savedKey           `json:"access_key"`
				Rotation  *latchkey.Rotation `json:"rotation"`
			}{savedKey{AccessKey: k.AccessKey, Profile: o.profile, File: o.credsAt}, r})
		}
		return p.JSON(out)
	}
	if o.profile == "" {
		warnSecretOnce(p)
		fmt.Fprintf(p.out, "Access key ID:     %s\nSecret access key: %s\n", k.ID, k.SecretAccessKey)
	}
	when := "stays Active until someone deactivates it"
	if r.ExpiresAt != nil {
		when = fmt.Sprintf("goes from %s, once unused for %s", r.ExpiresAt.Format(time.RFC3339), r.QuietPeriod)
		if r.HardLimitAt != nil {
			when += fmt.Sprintf(", and at %s at the latest", r.HardLimitAt.Format(time.RFC3339))
		}
	}
	fmt.Fprintf(p.err, "Rolled %s to %s: the old key %s. Follow it with latchkey list-access-keys or the console.\n", r.OldKeyID, r.NewKeyID, when)
	return nil
}

// Outcomes of a rotation, in its JSON summary.
const (
	outcomeCompleted   = "completed"
	outcomeOldKeyKept  = "old_key_kept"
	outcomeReactivated = "reactivated"
	outcomeStopped     = "stopped"
)

type rotateResult struct {
	Application     string `json:"application"`
	OldAccessKeyID  string `json:"old_access_key_id"`
	NewAccessKeyID  string `json:"new_access_key_id"`
	Outcome         string `json:"outcome"`
	OldKeyStatus    string `json:"old_key_status"`
	SavedToProfile  string `json:"saved_to_profile,omitempty"`
	CredentialsFile string `json:"credentials_file,omitempty"`
}

// rotation is one run of rotate-access-key.
type rotation struct {
	s   *state
	cmd *cobra.Command
	o   rotateOptions
	cl  *client.Client
	p   *printer
	in  *input
	out io.Writer // the steps
	tty bool      // out is a terminal: redraw the live line in place

	old    *latchkey.AccessKey
	newKey *latchkey.AccessKey
	step   int
	res    rotateResult

	liveOpen bool
	// resumedValidation: the old key was already Inactive when this run
	// started, so refusals may predate it.
	resumedValidation bool
}

func (s *state) runRotate(cmd *cobra.Command, o rotateOptions) error {
	if err := required("access-key-id", o.id, "LKIAEXAMPLEEXAMPLE23"); err != nil {
		return err
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"quiet-period", o.quiet}, {"validate-period", o.validate}} {
		if d.v < 0 {
			return UsageErrorf("--%s %s: expected a duration of 0 or more, such as 15m", d.flag, d.v)
		}
	}
	if o.poll <= 0 {
		return UsageErrorf("--poll-interval %s: expected a positive duration, such as 2s", o.poll)
	}
	p, err := s.printer(cmd)
	if err != nil {
		return err
	}
	cl, err := s.client(cmd)
	if err != nil {
		return err
	}
	if o.credsAt == "" {
		o.credsAt = s.credentialsFile()
	}
	if o.serverSide {
		return s.runServerSide(cmd, o, p, cl)
	}
	if o.expiresIn != "" || o.hardLimit != "" {
		return UsageErrorf("--old-key-expires-in and --hard-limit need --server-side")
	}
	if o.profile != "" {
		if err := s.checkSaveTarget(o.credsAt, o.profile); err != nil {
			return err
		}
	}
	r := &rotation{s: s, cmd: cmd, o: o, cl: cl, p: p, in: s.stdin(cmd), out: p.info}
	r.tty = s.env.IsTerminal(r.out)
	err = r.run(cmd.Context())
	r.endLive()
	if err != nil && r.step > 0 {
		if errors.Is(err, context.Canceled) {
			err = fmt.Errorf("interrupted at step %d", r.step)
		}
		if r.res.Outcome == "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "Rotation stopped at step %d/5. Run the same command again to pick up where the keys stand.\n", r.step)
		}
	}
	if r.res.Outcome != "" && p.format == formatJSON {
		if jerr := p.JSON(r.res); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

func (r *rotation) now() time.Time { return r.s.env.Now() }

func (r *rotation) printf(format string, args ...any) {
	r.endLive()
	fmt.Fprintf(r.out, format, args...)
}

func (r *rotation) begin(step int, title string) {
	r.step = step
	r.printf("\nStep %d/5: %s\n", step, title)
}

// live shows a status line that changes: redrawn in place on a terminal,
// printed as a new line otherwise (only when print is true, so that logs do
// not fill up with one line per poll).
func (r *rotation) live(line string, print bool) {
	if r.tty {
		fmt.Fprintf(r.out, "\r\x1b[K%s", line)
		r.liveOpen = true
		return
	}
	if print {
		fmt.Fprintln(r.out, line)
	}
}

func (r *rotation) endLive() {
	if r.liveOpen {
		fmt.Fprintln(r.out)
		r.liveOpen = false
	}
}

func (r *rotation) run(ctx context.Context) error {
	old, err := r.cl.GetAccessKey(ctx, r.o.id)
	if err != nil {
		return err
	}
	if old.Principal != "" {
		return UsageErrorf("access key %s belongs to principal %q; rotate-access-key rotates application keys (for an admin key: create-access-key --principal-name %s, configure, then delete the old key)",
			old.ID, old.Principal, old.Principal)
	}
	r.old = old
	r.res = rotateResult{Application: old.Application, OldAccessKeyID: old.ID, OldKeyStatus: string(old.Status)}
	if r.o.profile != "" {
		r.res.SavedToProfile, r.res.CredentialsFile = r.o.profile, r.o.credsAt
	}
	var others []*latchkey.AccessKey
	for k, err := range r.cl.AccessKeys(ctx, client.ListAccessKeysInput{Account: old.Account, Application: old.Application}) {
		if err != nil {
			return err
		}
		if k.ID != old.ID {
			others = append(others, k)
		}
	}
	// The newest other Active key is the one the callers move to.
	for _, k := range slices.Backward(others) {
		if k.Status == latchkey.StatusActive {
			r.newKey = k
			break
		}
	}
	used := "never used"
	if old.LastUsed != nil {
		used = "last used " + lastUsedText(r.now(), old.LastUsed)
	}
	r.printf("Rotating access key %s of application %q: %s, %s.\n", old.ID, old.Application, old.Status, used)
	if r.newKey != nil {
		r.res.NewAccessKeyID = r.newKey.ID
	}
	if err := r.checkProfile(); err != nil {
		return err
	}

	switch {
	case old.Status == latchkey.StatusActive:
		created, err := r.createSecond(ctx, others)
		if err != nil {
			return err
		}
		if err := r.handOver(ctx, created); err != nil {
			return err
		}
		if err := r.deactivate(ctx); err != nil {
			return err
		}
	case r.newKey == nil:
		return latchkey.Errorf(latchkey.ECONFLICT,
			"access key %s is already Inactive and application %q has no Active key to move to: reactivate it (latchkey update-access-key --access-key-id %s --status Active) and run this command again",
			old.ID, old.Application, old.ID)
	default:
		r.resumedValidation = true
		r.begin(1, "create the second key")
		r.printf("  Already done: %s is the application's Active key.\n", r.newKey.ID)
		r.begin(2, "hand the new key over")
		r.printf("  Already done: the callers were moved to %s.\n", r.newKey.ID)
		r.begin(3, "deactivate the old key")
		r.printf("  Already done: %s is Inactive (deactivated %s).\n", old.ID, ago(r.now(), old.UpdatedAt))
	}

	keep, err := r.validateOld(ctx)
	if err != nil || keep {
		return err
	}
	return r.deleteOld(ctx)
}

// checkProfile refuses a --save-to-profile that holds a key other than
// the one being rotated (or the new key, on a resumed run): saving there
// would move that key to PROFILE-previous-N, and whatever reads the profile
// would lose it. It runs before anything changes.
func (r *rotation) checkProfile() error {
	if r.o.profile == "" {
		return nil
	}
	f, err := credfile.Read(r.o.credsAt)
	if err != nil {
		return fmt.Errorf("reading %s: %w", r.o.credsAt, err)
	}
	held := f.Profile(r.o.profile)[credfile.KeyAccessKeyID]
	if held == "" || held == r.old.ID || r.newKey != nil && held == r.newKey.ID {
		return nil
	}
	return UsageErrorf("--save-to-profile %s: profile %q in %s holds access key %s, not %s, the key being rotated; "+
		"name the profile that holds %s, or a new one (nothing was changed)",
		r.o.profile, r.o.profile, r.o.credsAt, held, r.old.ID, r.old.ID)
}

// createSecond is step 1. It returns the new key when it created one, nil
// when an earlier run did.
func (r *rotation) createSecond(ctx context.Context, others []*latchkey.AccessKey) (*client.CreatedAccessKey, error) {
	r.begin(1, "create the second key")
	if r.newKey != nil {
		r.printf("  Already done: %s (created %s) is the application's second Active key.\n", r.newKey.ID, ago(r.now(), r.newKey.CreatedAt))
		if r.newKey.CreatedAt.Before(r.old.CreatedAt) {
			r.printf("  Note: %s is older than %s; the callers will be moved from %s to it.\n", r.newKey.ID, r.old.ID, r.old.ID)
		}
		return nil, nil
	}
	k, err := r.cl.CreateAccessKey(ctx, client.CreateAccessKeyInput{
		Account: r.old.Account, Application: r.old.Application, Description: "rotation of " + r.old.ID})
	if latchkey.ErrorCode(err) == latchkey.ELIMIT {
		var ids, desc []string
		for _, o := range others {
			if o.Status == latchkey.StatusInactive {
				ids = append(ids, o.ID)
				desc = append(desc, fmt.Sprintf("%s (Inactive, last used %s)", o.ID, lastUsedText(r.now(), o.LastUsed)))
			}
		}
		if len(ids) > 0 {
			return nil, latchkey.Errorf(latchkey.ELIMIT,
				"application %q already has %d access keys, the most it may have. Not part of this rotation: %s. Delete it (latchkey delete-access-key --access-key-id %s) if nothing needs it, then run this command again",
				r.old.Application, len(others)+1, strings.Join(desc, ", "), ids[0])
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	r.newKey = &k.AccessKey
	r.res.NewAccessKeyID = k.ID
	r.printf("  Created %s (Active).\n", k.ID)
	return k, nil
}

// handOver is step 2: put the new key where the callers read it, then
// watch until the old key has gone quiet.
func (r *rotation) handOver(ctx context.Context, created *client.CreatedAccessKey) error {
	r.begin(2, "hand the new key over")
	switch {
	case created != nil && r.o.profile != "":
		var b strings.Builder
		if err := r.s.saveKey(&b, r.cmd.ErrOrStderr(), r.o.credsAt, r.o.profile, created.ID, created.SecretAccessKey); err != nil {
			return fmt.Errorf("%w; the new key %s cannot be shown again: delete it (latchkey delete-access-key --access-key-id %s --force) and run this command again", err, created.ID, created.ID)
		}
		r.printf("%s", indent(b.String()))
	case created != nil:
		if r.p.format == formatJSON {
			if err := r.p.JSON(created); err != nil {
				return err
			}
		} else {
			r.printf("  Access key ID:     %s\n  Secret access key: %s\n", created.ID, created.SecretAccessKey)
		}
		r.printf("  This is the only time the secret is shown: put it where every instance of %q reads its key now.\n", r.old.Application)
	case r.o.profile != "":
		f, err := credfile.Read(r.o.credsAt)
		if err != nil {
			return err
		}
		if f.Profile(r.o.profile)[credfile.KeyAccessKeyID] != r.newKey.ID {
			return latchkey.Errorf(latchkey.ECONFLICT,
				"%s was created by an earlier run, but profile %q in %s does not hold it and its secret cannot be shown again. Put it there if you have it; otherwise delete it (latchkey delete-access-key --access-key-id %s --force) and run this command again",
				r.newKey.ID, r.o.profile, r.o.credsAt, r.newKey.ID)
		}
		r.printf("  Already done: profile %q in %s holds %s.\n", r.o.profile, r.o.credsAt, r.newKey.ID)
	default:
		r.printf("  %s was created by an earlier run; its secret was shown then.\n", r.newKey.ID)
	}
	return r.watchQuiet(ctx)
}

// watchQuiet shows both keys' last use until the old key has not been used
// for the quiet period, or the user moves on. Quiet is measured on this
// machine's clock from the last change seen, so clock skew with the server
// does not matter.
func (r *rotation) watchQuiet(ctx context.Context) error {
	r.printf("  Watching both keys. Moving on once %s has not been used for %s; press Enter or type skip to move on now.\n",
		r.old.ID, duration(r.o.quiet))
	var (
		seen        *latchkey.Use // the newest use of the old key seen so far
		seenCount   int64
		first       = true
		quietSince  = r.now()
		lastPrinted time.Time
		lastShown   string
		lines       = r.in.Lines()
		heartbeat   = max(time.Minute, 10*r.o.poll)
	)
	for {
		o, err := r.cl.GetAccessKeyLastUsed(ctx, r.old.ID)
		if err != nil {
			return err
		}
		n, err := r.cl.GetAccessKeyLastUsed(ctx, r.newKey.ID)
		if err != nil {
			return err
		}
		now := r.now()
		// Only a newer use or a higher count counts as use: a read may show
		// less than an earlier one while the server writes its usage.
		if newer(o.LastUsed, seen) || o.UseCount > seenCount {
			if !first {
				quietSince = now
			}
			if newer(o.LastUsed, seen) {
				seen = o.LastUsed
			}
			seenCount = max(seenCount, o.UseCount)
		}
		first = false
		if o.Status != latchkey.StatusActive {
			return latchkey.Errorf(latchkey.ECONFLICT, "%s became %s during the watch (changed by someone else?); run this command again", r.old.ID, o.Status)
		}
		quiet := now.Sub(quietSince)
		shown := fmt.Sprintf("  old %s: %s | new %s: %s", r.old.ID, usage(now, o), r.newKey.ID, usage(now, n))
		key := fmt.Sprint(o.UseCount, n.UseCount > 0, whoUsed(o.LastUsed), whoUsed(n.LastUsed))
		r.live(fmt.Sprintf("%s | quiet %s of %s", shown, short(quiet), duration(r.o.quiet)),
			key != lastShown || now.Sub(lastPrinted) >= heartbeat)
		if key != lastShown || now.Sub(lastPrinted) >= heartbeat {
			lastShown, lastPrinted = key, now
		}
		if quiet >= r.o.quiet {
			r.printf("  %s has not been used for %s; %s %s.\n", r.old.ID, duration(r.o.quiet), r.newKey.ID, usedPhrase(now, n.LastUsed))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case line, ok := <-lines:
			if !ok {
				lines = nil // no one is typing: wait for the quiet period
				continue
			}
			if line == "" || strings.EqualFold(line, "skip") {
				r.printf("  Moving on at your request: %s %s.\n", r.old.ID, usedPhrase(now, o.LastUsed))
				return nil
			}
			r.printf("  Press Enter or type skip to move on now.\n")
		case <-r.s.env.After(r.o.poll):
		}
	}
}

// deactivate is step 3.
func (r *rotation) deactivate(ctx context.Context) error {
	r.begin(3, "deactivate the old key")
	inactive := latchkey.StatusInactive
	k, err := r.cl.UpdateAccessKey(ctx, r.old.ID, latchkey.AccessKeyUpdate{Status: &inactive})
	if err != nil {
		return err
	}
	r.old = k
	r.res.OldKeyStatus = string(k.Status)
	r.printf("  %s is Inactive: calls made with it are refused, and each refusal is recorded. It can be made Active again.\n", k.ID)
	return nil
}

// validateOld is step 4. keep is true when the rotation ends here with the
// old key kept (reactivated, or left Inactive for lack of an answer).
func (r *rotation) validateOld(ctx context.Context) (keep bool, err error) {
	r.begin(4, "validate")
	base, err := r.cl.GetAccessKeyLastUsed(ctx, r.old.ID)
	if err != nil {
		return false, err
	}
	// Evidence is a refusal after the deactivation (both times are the
	// server's). Refusals seen before this run started do not stop it, but
	// are shown. Counts are not used: a read may show less than an earlier
	// one while the server writes its usage.
	since := r.old.UpdatedAt
	if r.resumedValidation {
		if rj := latest(r.old.LastRejected, base.LastRejected); rj != nil && rj.At.After(since) {
			since = rj.At
			r.printf("  Note: since it was deactivated, %s was refused, last %s. Only new refusals stop the rotation.\n",
				r.old.ID, lastRejectedText(r.now(), rj))
		}
	}
	r.printf("  Watching for calls with %s for %s; any is refused and stops the rotation here. Press Enter or type skip to end early.\n",
		r.old.ID, duration(r.o.validate))
	var (
		deadline    = r.now().Add(r.o.validate)
		lines       = r.in.Lines()
		lastPrinted time.Time
		heartbeat   = max(time.Minute, 10*r.o.poll)
	)
	for {
		lu, err := r.cl.GetAccessKeyLastUsed(ctx, r.old.ID)
		if err != nil {
			return false, err
		}
		now := r.now()
		if lu.Status != latchkey.StatusInactive {
			r.res.Outcome, r.res.OldKeyStatus = outcomeStopped, string(lu.Status)
			return true, fmt.Errorf("%s was made %s again during validation (by someone else?); run this command again to resume", r.old.ID, lu.Status)
		}
		if rj := lu.LastRejected; rj != nil && (rj.At.After(since) || !r.resumedValidation && rj.At.Equal(since)) {
			return r.stillUsed(ctx, lu)
		}
		left := deadline.Sub(now)
		if left <= 0 {
			r.printf("  No call tried %s for %s.\n", r.old.ID, duration(r.o.validate))
			return false, nil
		}
		print := now.Sub(lastPrinted) >= heartbeat
		if print {
			lastPrinted = now
		}
		r.live(fmt.Sprintf("  %s left; %s not tried since it was deactivated", short(left), r.old.ID), print)
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case line, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			if line == "" || strings.EqualFold(line, "skip") {
				r.printf("  Validation ended early at your request, %s before its end; no call tried %s.\n", short(left), r.old.ID)
				return false, nil
			}
			r.printf("  Press Enter or type skip to end validation now.\n")
		case <-r.s.env.After(r.o.poll):
		}
	}
}

// stillUsed shows who tried the Inactive key and offers to reactivate it.
func (r *rotation) stillUsed(ctx context.Context, lu *client.AccessKeyLastUsed) (keep bool, err error) {
	rj := lu.LastRejected
	r.printf("  %s was tried after it was deactivated: %s.\n", r.old.ID, lastRejectedText(r.now(), rj))
	r.printf("  Who: source IP %s, user agent %q. That caller still has the old key.\n", dash(rj.IP), rj.UserAgent)
	yes, answered := true, true
	if !r.o.yes {
		r.endLive()
		yes, answered, err = r.in.confirm(ctx, r.out, fmt.Sprintf("  Reactivate %s so that it works again?", r.old.ID), true)
		if err != nil {
			return true, err
		}
	} else {
		r.printf("  Reactivating it (--yes).\n")
	}
	switch {
	case yes:
		active := latchkey.StatusActive
		if _, err := r.cl.UpdateAccessKey(ctx, r.old.ID, latchkey.AccessKeyUpdate{Status: &active}); err != nil {
			return true, err
		}
		r.res.Outcome, r.res.OldKeyStatus = outcomeReactivated, string(latchkey.StatusActive)
		r.printf("  %s is Active again. Move that caller to %s, then run this same command again: it picks up at step 2.\n", r.old.ID, r.newKey.ID)
		return true, fmt.Errorf("rotation stopped: %s is still in use, and is Active again", r.old.ID)
	case !answered:
		r.res.Outcome = outcomeStopped
		r.printf("  %s stays Inactive. Reactivate it with: latchkey update-access-key --access-key-id %s --status Active\n", r.old.ID, r.old.ID)
		return true, fmt.Errorf("rotation stopped: %s is still in use and nobody answered whether to reactivate it (--yes reactivates it)", r.old.ID)
	}
	r.printf("  %s stays Inactive: that caller is refused (what you want if it should not have the key).\n", r.old.ID)
	return false, nil
}

// deleteOld is step 5.
func (r *rotation) deleteOld(ctx context.Context) error {
	r.begin(5, "delete the old key")
	if !r.o.yes {
		yes, _, err := r.in.confirm(ctx, r.out, fmt.Sprintf("  Delete %s now? This cannot be undone.", r.old.ID), false)
		if err != nil {
			return err
		}
		if !yes {
			r.res.Outcome = outcomeOldKeyKept
			r.printf("  %s stays Inactive. Delete it later with: latchkey delete-access-key --access-key-id %s\n", r.old.ID, r.old.ID)
			return nil
		}
	}
	if err := r.cl.DeleteAccessKey(ctx, client.DeleteAccessKeyInput{AccessKeyID: r.old.ID}); err != nil {
		return err
	}
	r.res.Outcome, r.res.OldKeyStatus = outcomeCompleted, "Deleted"
	r.printf("  Deleted %s.\n", r.old.ID)
	r.printf("\nRotation complete: application %q uses %s.\n", r.old.Application, r.newKey.ID)
	if r.o.profile != "" {
		if f, err := credfile.Read(r.o.credsAt); err == nil {
			for _, name := range f.Profiles() {
				if name != r.o.profile && f.Profile(name)[credfile.KeyAccessKeyID] == r.old.ID {
					r.printf("Profile %q in %s still holds the deleted key; remove that section when convenient.\n", name, r.o.credsAt)
				}
			}
		}
	}
	return nil
}

func latest(a, b *latchkey.Rejection) *latchkey.Rejection {
	if a == nil || (b != nil && b.At.After(a.At)) {
		return b
	}
	return a
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}

// newer reports whether a is a later use than b.
func newer(a, b *latchkey.Use) bool {
	return a != nil && (b == nil || a.At.After(b.At))
}

func whoUsed(u *latchkey.Use) string {
	if u == nil {
		return ""
	}
	return u.IP + " " + u.UserAgent
}

// usage is "12 uses, last 3s ago from 192.0.2.7 (curl/8.5.0)".
func usage(now time.Time, lu *client.AccessKeyLastUsed) string {
	if lu.LastUsed == nil {
		return "never used"
	}
	return fmt.Sprintf("%s, last %s", plural(lu.UseCount, "use"), lastUsedText(now, lu.LastUsed))
}
