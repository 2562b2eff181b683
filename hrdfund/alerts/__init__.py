"""Staff alerts by email: something waits on a case. The email never carries case details."""
