"""One module per outside thing on the host; each is the only one to import its library."""
