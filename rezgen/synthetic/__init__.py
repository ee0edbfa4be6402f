"""Made-up data: the synthetic recording and the fake agent (`rezgen replay`)."""
