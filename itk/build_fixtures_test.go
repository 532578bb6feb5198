package itk

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "regenerate golden files and testdata/sample.pdf")

// fixedClock is the build time of every golden message.
func fixedClock() time.Time { return time.Date(2026, 11, 24, 10, 30, 16, 0, time.UTC) }

func fixedIDs() *IDs {
	return &IDs{
		Bundle:             "d12dc439-ca5c-4177-bb70-4fece88edab0",
		BundleIdentifier:   "0bcb5098-ce5a-4a85-a547-2574f90310e4",
		MessageHeader:      "ea7221b8-3cc0-4b11-bc95-585b056b5428",
		SenderOrganization: "c0bee62f-9932-4468-9508-71c67a9f0c2c",
		DocumentBundle:     "70c35c4a-65f4-4a03-bcf7-d1041ab999fd",
		Composition:        "e1580b71-99bd-4c5b-8d54-9b420418135f",
		Patient:            "31686b67-9f20-4644-9a54-193d2f91de11",
		Author:             "d0269177-3edc-468b-9f70-971189158bcb",
		CareOrganization:   "ab71659b-8b8d-43df-b6ba-7f755e9dca64",
		Binaries:           []string{"caf5f17d-e73d-4aaa-a406-dab1717da0c4", "635230e2-6e87-11ea-bc55-0242ac130003"},
	}
}

func readSamplePDF(t testing.TB) []byte {
	t.Helper()
	pdf, err := os.ReadFile(filepath.Join("testdata", "sample.pdf"))
	if err != nil {
		t.Fatalf("read sample.pdf: %v", err)
	}
	return pdf
}

// realisticRequest: practitioner author, care setting, two documents, a
// replacement. All patient data is fictitious (9434765919 is a test number).
func realisticRequest(t testing.TB) *SendRequest {
	return &SendRequest{
		Patient: Patient{
			NHSNumber: "9434765919",
			BirthDate: "1957-01-09",
			Name:      HumanName{Family: "O'Brien-Smith", Given: []string{"Richard", "John"}, Prefix: []string{"Mr"}},
			Gender:    "male",
			Address:   &Address{Line: []string{"1 Trevelyan Square", "Boar Lane"}, City: "Leeds", District: "West Yorkshire", PostalCode: "LS1 6AE"},
		},
		Sender: Sender{ODSCode: "RX1", Name: "Example NHS Trust", Mailbox: "X26OT123", Phone: "01136323200"},
		Author: Author{Practitioner: &Practitioner{
			SDSUserID: "033345750518",
			Name:      HumanName{Family: "Pritchard", Given: []string{"Gary"}, Prefix: []string{"Dr"}},
			Phone:     "01136323201",
		}},
		CareSetting: &CareSetting{
			Type:         &Code{Code: "789718008", Display: "Cardiology service"},
			Date:         "2026-11-20T09:15:00+00:00",
			Organization: &Organization{ODSCode: "RX1AB", Name: "Cardiology Outpatients & Day Unit", Phone: "01136323202"},
		},
		Documents: []Document{
			{
				Title:       "Outpatient letter <cardiology>",
				Type:        Code{Code: "371531000", Display: "Report of clinical encounter"},
				ContentType: "application/pdf",
				FileName:    "letter.pdf",
				Data:        readSamplePDF(t),
			},
			{
				Title:       "Holter monitor request",
				Type:        Code{Code: "371531000", Display: "Report of clinical encounter"},
				ContentType: "text/plain; charset=utf-8",
				Data:        []byte("Holter monitor requested. \"Urgent\" & routine.\n"),
			},
		},
		RecipientType:   "FA",
		Replaces:        &Replacement{DocumentID: "5b1c0a2e-3f7d-4d1e-9a61-2c1f0b7e8d90"},
		SenderReference: "846ebe66-5ff8-4499-bc57-a112d3d0daa3",
		Version:         2,
	}
}

// minimalRequest: device author, one document, GP lookup, defaults everywhere.
func minimalRequest() *SendRequest {
	return &SendRequest{
		Patient: Patient{NHSNumber: "9000000009", BirthDate: "2001-02-14", Name: HumanName{Family: "Smith"}},
		Sender:  Sender{ODSCode: "GP0001", Name: "Example Surgery", Mailbox: "MESHGP0001"},
		Author:  Author{Device: &Device{Name: "MESH Gateway", Version: "1.0.0"}},
		Documents: []Document{{
			Title:       "Discharge summary",
			Type:        Code{Code: "373942005", Display: "Discharge summary"},
			ContentType: "application/pdf",
			Data:        samplePDF([]string{"Discharge summary - TEST DOCUMENT"}, 0),
		}},
	}
}

func buildFixture(t testing.TB, req *SendRequest) *Message {
	t.Helper()
	m, err := Build(req, BuildOptions{IDs: fixedIDs(), Now: fixedClock})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return m
}
