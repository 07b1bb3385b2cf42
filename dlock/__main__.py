from dlock.cli import main

main()
