package scan

import (
	_ "embed"
	"fmt"
	"os"
	"strings"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"
)

//go:embed advisories.yaml
var shippedAdvisories []byte

// Advisory is a published vulnerability of a server package.
type Advisory struct {
	ID        string   `yaml:"id" json:"id"`
	Aliases   []string `yaml:"aliases" json:"aliases,omitempty"`
	Ecosystem string   `yaml:"ecosystem" json:"ecosystem"` // npm, pypi
	Package   string   `yaml:"package" json:"package"`
	Affected  string   `yaml:"affected" json:"affected"`
	Fixed     string   `yaml:"fixed" json:"fixed,omitempty"`
	Severity  string   `yaml:"severity" json:"severity"`
	Summary   string   `yaml:"summary" json:"summary"`
	rng       *semver.Constraints
}

// Advisories is a versioned list of them.
type Advisories struct {
	Updated string     `yaml:"updated" json:"updated"`
	List    []Advisory `yaml:"advisories" json:"advisories"`
	Source  string     `yaml:"-" json:"source"`
}

// ShippedAdvisories is the list built into the sensor.
func ShippedAdvisories() (*Advisories, error) {
	return parseAdvisories("built-in", shippedAdvisories)
}

// LoadAdvisories reads a list from a file (the same format as the shipped
// pkg/scan/advisories.yaml): `sensor scan --advisories FILE`.
func LoadAdvisories(path string) (*Advisories, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the advisories: %w", err)
	}
	return parseAdvisories(path, b)
}

func parseAdvisories(src string, b []byte) (*Advisories, error) {
	var a Advisories
	if err := yaml.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: %s", src, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if a.Updated == "" {
		return nil, fmt.Errorf("%s: no `updated:` date: a list says how fresh it is", src)
	}
	for i := range a.List {
		ad := &a.List[i]
		if ad.ID == "" || ad.Package == "" || ad.Affected == "" {
			return nil, fmt.Errorf("%s: advisory %d: id, package and affected are required", src, i+1)
		}
		switch ad.Ecosystem {
		case "npm", "pypi":
		default:
			return nil, fmt.Errorf("%s: advisory %s: ecosystem %q: use npm or pypi", src, ad.ID, ad.Ecosystem)
		}
		c, err := semver.NewConstraint(ad.Affected)
		if err != nil {
			return nil, fmt.Errorf("%s: advisory %s: affected %q: %v", src, ad.ID, ad.Affected, err)
		}
		ad.rng = c
	}
	a.Source = src
	return &a, nil
}

// Match lists the advisories of a package's version. An unknown or
// unparsable version matches nothing (an unpinned package is its own
// finding).
func (a *Advisories) Match(ecosystem, pkg, version string) []Advisory {
	if a == nil || version == "" {
		return nil
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return nil
	}
	if ecosystem == "pypi" {
		pkg = normalisePyPI(pkg)
	}
	var out []Advisory
	for _, ad := range a.List {
		name := ad.Package
		if ad.Ecosystem == "pypi" {
			name = normalisePyPI(name)
		}
		if ad.Ecosystem == ecosystem && name == pkg && ad.rng.Check(v) {
			out = append(out, ad)
		}
	}
	return out
}

// normalisePyPI is PEP 503's name: lower case, runs of -_. as one -.
func normalisePyPI(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	dash := false
	for _, r := range s {
		if r == '-' || r == '_' || r == '.' {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		dash = false
		b.WriteRune(r)
	}
	return b.String()
}
