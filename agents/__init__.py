"""The agent roles (solver, critic, discriminator, judge, reflection); each is an async callable."""
