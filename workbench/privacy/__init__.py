"""Personal data: keyed pseudonymisation, display masking, consent and PII scans."""
