"""Users, sign-in, sessions, two-factor authentication and first-run setup."""
