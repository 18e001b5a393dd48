from sonic.bench.cli import main

main()
