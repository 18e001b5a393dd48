from sonic.inference.soundscape.cli import main

main()
