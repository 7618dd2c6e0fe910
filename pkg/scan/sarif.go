package scan

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/owenrumney/go-sarif/v2/sarif"
)

// sarifLevel maps a severity to SARIF's level.
func sarifLevel(sev string) string {
	switch sev {
	case "critical", "high":
		return "error"
	case "medium":
		return "warning"
	}
	return "note"
}

// securitySeverity is GitHub code scanning's numeric severity.
var securitySeverity = map[string]string{"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}

// WriteSARIF writes the findings as a SARIF 2.1.0 log.
func (r *Report) WriteSARIF(w io.Writer, version string) error {
	rep, err := sarif.New(sarif.Version210)
	if err != nil {
		return fmt.Errorf("writing SARIF: %w", err)
	}
	run := sarif.NewRunWithInformationURI("mcpsec-sensor scan", "https://github.com/mcpsec/sensor")
	run.Tool.Driver.Version = &version
	for _, ru := range Rules {
		run.AddRule(ru.ID).WithName(ru.Name).WithDescription(ru.Help).WithTextHelp(ru.Help)
	}
	for _, f := range r.Findings {
		abs, err := filepath.Abs(f.File)
		if err != nil {
			abs = f.File
		}
		pl := sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewSimpleArtifactLocation("file://" + abs))
		if f.Line > 0 {
			pl.WithRegion(sarif.NewSimpleRegion(f.Line, f.Line))
		}
		loc := sarif.NewLocationWithPhysicalLocation(pl).
			WithLogicalLocations([]*sarif.LogicalLocation{sarif.NewLogicalLocation().WithName(f.Server).WithKind("module")})
		text := f.Title + ". Evidence: " + clean(f.Evidence)
		if f.Fix != "" {
			text += ". Fix: " + f.Fix
		}
		res := run.CreateResultForRule(RuleID(f.Rule)).WithLevel(sarifLevel(f.Severity)).
			WithMessage(sarif.NewTextMessage(text)).WithLocations([]*sarif.Location{loc})
		props := sarif.NewPropertyBag()
		props.Add("security-severity", securitySeverity[f.Severity])
		props.Add("severity", f.Severity)
		props.Add("client", f.Client)
		if f.Advisory != nil {
			props.Add("advisory", f.Advisory.ID)
			props.Add("aliases", f.Advisory.Aliases)
		}
		res.AttachPropertyBag(props)
	}
	rep.AddRun(run)
	return rep.PrettyWrite(w)
}
