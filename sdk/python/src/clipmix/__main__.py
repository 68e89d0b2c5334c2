from clipmix.cli import main

main()
