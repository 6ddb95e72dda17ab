// wabot portal script: filled in with the link page.
