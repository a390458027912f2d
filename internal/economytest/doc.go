// Package economytest holds the test of what the GitHub sources cost
// together: the github and actions sources on one 300-repository
// organisation, through the same fake GitHub, as a user runs them side by
// side. It is test-only, so that neither source package imports the other.
package economytest
