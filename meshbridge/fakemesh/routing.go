package fakemesh

import (
	"strings"

	"github.com/meshgateway/gateway/itk"
)

// gpProviderPrefix marks demographic routing in mex-To. It "must be all upper
// case" (itk3-send-document.md §2.2), so it is matched before mex-To is upper-cased.
const gpProviderPrefix = "GPPROVIDER_"

// resolveGPProvider resolves GPPROVIDER_<nhs>_<YYYYMMDD>_<surname> against the
// patient table, as Spine's PDS + endpoint lookup would. It returns the
// practice mailbox, or an EPL-15x code that the caller reports
// asynchronously. Surnames match case-insensitively; the date must be YYYYMMDD.
func (s *Server) resolveGPProvider(to string) (mailbox, errCode string) {
	parts := strings.SplitN(strings.TrimPrefix(to, gpProviderPrefix), "_", 3)
	if len(parts) != 3 {
		return "", "EPL-152"
	}
	nhs, dob, surname := parts[0], parts[1], strings.TrimSpace(parts[2])
	if !itk.ValidNHSNumber(nhs) {
		return "", "EPL-152"
	}
	p, ok := s.patients[nhs]
	if !ok {
		return "", "EPL-153"
	}
	if p.LookupError != "" {
		return "", p.LookupError
	}
	if dob != p.BirthDate || !strings.EqualFold(surname, strings.TrimSpace(p.Surname)) {
		return "", "EPL-154"
	}
	if p.Mailbox == "" {
		return "", "EPL-151"
	}
	if _, ok := s.mailboxes[p.Mailbox]; !ok {
		return "", "EPL-151"
	}
	return p.Mailbox, ""
}
