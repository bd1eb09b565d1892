"""The NTIRE Efficient SR challenge: editions as data, the score and ranking, the challenge protocol."""
