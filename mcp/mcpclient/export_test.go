package mcpclient

// ParseChallengeInfoForTest exposes parseChallengeInfo to the external
// tests.
func ParseChallengeInfoForTest(headers []string) (challengeInfo, error) {
	return parseChallengeInfo(headers)
}
