from services.jobs.app import main

main()
